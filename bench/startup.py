"""Start-up figures: basketry as a user runs it, each a whole fresh process, the median of
several runs, side by side in one run, with the goals of issue 13.

1. ``basketry --help``  (goal: at most 0.25 s), beside ``python -c pass`` (the floor).
2. ``basketry mine retail.dat --min-support 0.0005 --min-confidence 0.1 --out DIR`` against a
   plain pyfim script that reads the file, mines the same rules and writes them to Parquet
   (``bench/_pyfim_mine.py``; goal: basketry at most 0.8x the script's time). Both must find the
   same number of rules.
3. A serving worker ready: ``basketry serve --model DIR`` until ``GET /readyz`` answers 200, on
   the retail model of 98k rules (min support 0.0002, min confidence 0.1; goal: under 1 s), with
   this environment's ``basketry`` and, given ``--serve-install BIN``, a serving install's
   (``pip install 'basketry[serve]'``: no pandas, which pyarrow imports on its first conversion
   wherever pandas is installed, about 0.2 s).

The runs of the contestants alternate (a, b, a, b, ...) so that the host's drift hits both.

    python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _host import StealMeter  # bench/ is the script's directory

DATA = Path(os.environ.get("BASKETRY_SHARED_DATA", Path(__file__).parents[1] / "../shared/data"))
HERE = Path(__file__).resolve().parent
BASKETRY = str(Path(sys.executable).with_name("basketry"))
MINE = ("0.0005", "0.1")
SERVE_MODEL = ("0.0002", "0.1")  # 98,372 rules on retail.dat


def timed(argv: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kwargs)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready_seconds(model: Path, basketry: str = BASKETRY) -> float:
    """From the start of ``basketry serve`` to the first 200 from /readyz (polled every 2 ms)."""
    port = free_port()
    env = {**os.environ, "BASKETRY_ACCESS_LOG": "false", "BASKETRY_LOG_LEVEL": "warning"}
    start = time.perf_counter()
    server = subprocess.Popen([basketry, "serve", "--model", str(model), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    try:
        while time.perf_counter() - start < 60:
            if server.poll() is not None:
                raise RuntimeError("the server exited before it was ready")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(request)
                    if conn.recv(64).startswith(b"HTTP/1.1 200"):
                        return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError("not ready within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def count_rules_basketry(model: Path) -> int:
    import json

    return json.loads((model / "manifest.json").read_text())["counts"]["n_rules"]


def count_rules_pyfim(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per contestant")
    parser.add_argument("--serve-install", metavar="BIN", help="the basketry command of a "
                        "serving install (e.g. /tmp/serve-venv/bin/basketry), timed too")
    args = parser.parse_args()
    retail = DATA / "retail.dat"
    if not retail.is_file():
        sys.exit(f"{retail} not found (set BASKETRY_SHARED_DATA)")
    scratch = Path(tempfile.mkdtemp(prefix="basketry-startup-"))
    steal = StealMeter()
    try:
        out, pyfim_out = scratch / "mined", scratch / "pyfim.parquet"
        serve_model = scratch / "serve-model"
        subprocess.run([BASKETRY, "mine", str(retail), "--min-support", SERVE_MODEL[0],
                        "--min-confidence", SERVE_MODEL[1], "--out", str(serve_model)],
                       check=True, stdout=subprocess.DEVNULL)
        mine_argv = [BASKETRY, "mine", str(retail), "--min-support", MINE[0],
                     "--min-confidence", MINE[1], "--out", str(out), "--overwrite"]
        pyfim_argv = [sys.executable, str(HERE / "_pyfim_mine.py"), str(retail), *MINE,
                      str(pyfim_out)]
        contestants = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "basketry --help": [BASKETRY, "--help"],
            "basketry mine": mine_argv,
            "pyfim script": pyfim_argv,
        }
        for argv in contestants.values():  # warm the page cache and the kernels' loading
            timed(argv)
        servers = {"serve ready": BASKETRY}
        if args.serve_install:
            servers["serve ready (serve install)"] = args.serve_install
        times: dict[str, list[float]] = {name: [] for name in (*contestants, *servers)}
        for _ in range(args.runs):
            for name, argv in contestants.items():
                times[name].append(timed(argv))
            for name, command in servers.items():
                times[name].append(ready_seconds(serve_model, command))
        median = {name: statistics.median(values) for name, values in times.items()}
        n_basketry, n_pyfim = count_rules_basketry(out), count_rules_pyfim(pyfim_out)
        n_served = count_rules_basketry(serve_model)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"start-up, median of {args.runs} fresh processes each (host steal "
          f"{100 * steal.share():.0f}%)")
    for name, values in times.items():
        spread = f"{min(values):.3f}-{max(values):.3f}"
        print(f"  {name:<28} {median[name]:7.3f} s   (range {spread} s)")
    ratio = median["basketry mine"] / median["pyfim script"]
    print(f"basketry --help: {median['basketry --help']:.3f} s (goal <= 0.25 s)")
    print(f"basketry mine / pyfim script: {ratio:.2f}x (goal <= 0.8x); rules "
          f"{n_basketry:,} / {n_pyfim:,}{'' if n_basketry == n_pyfim else '  (DIFFER)'}")
    for name in servers:
        print(f"{name.replace('serve ready', 'serving worker ready')} on {n_served:,} rules: "
              f"{median[name]:.3f} s (goal < 1 s)")


if __name__ == "__main__":
    main()
