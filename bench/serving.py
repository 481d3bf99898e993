"""Serving benchmark: a full recommendation against a bare endpoint on the common Python stack.

In one run, with the same server (uvicorn, one worker by default), the same load generator in
its own process and the same connection count, on loopback:

  (a) a bare FastAPI + uvicorn endpoint returning a fixed JSON body;
  (b) basketry's ``POST /v1/recommendations`` serving the retail.dat model mined at support
      0.0002, confidence 0.1 (about 100k rules), with baskets sampled from retail.dat;
  (c) ``mlflow models serve --env-manager local`` of the same model, logged as an MLflow model
      through basketry's own ``python_function`` flavour (``basketry.training.pyfunc``, the
      way ``basketry train`` logs it, here into a throwaway SQLite store), driven on
      ``POST /invocations`` with the same baskets, one per request, as
      ``{"dataframe_records": [{"basket": [...], "k": 5}]}``. Before it is measured, its
      answers to a few baskets are checked against (b)'s: the same items, in the same order.

It prints throughput and p50/p99 latency of each and the ratios b/a, b/c and c/a, then the
latency of (b) under a rate-limited (open-loop) load at 80% of its peak throughput, beside the
same phase on (a) at 80% of a's peak as a control (what the machine and the client add by
themselves); open-loop latency counts from each request's scheduled time, and is also printed
without the client's own timer lateness. Beside them, (h) the host control: a server whose every
answer costs (b)'s closed-loop CPU per request and never more (bench/_fixed_cost_server.py), at
80% of its own peak: the p99 that the host leaves to any server at that utilisation. Goal
(issue 4): b >= 1.0 x a, and p99 under 10 ms at 80% of b's peak. (c) shows what serving with
basketry's own server buys over the MLflow route (issue 5); it is skipped, with a note, when
MLflow is not installed.

The load generator is ``bench/loadgen.c`` (compiled here with the machine's C compiler): one
C thread under epoll, closed loop for the peaks and fixed-rate open loop (as wrk2 does, which
is not packaged here) for the 80% phases, so peak and open loop are measured by the same
client. Without a compiler, wrk (closed loop) and an asyncio Python client (open loop), which
costs about a third of a core at 5,000 requests/s on the same two cores as the server. Every
phase also reports the host's steal time (the share of a core the hypervisor gave to other
guests meanwhile): on a shared virtual machine, phases with steal show it in their p99. The
open-loop phases of (b) and of the control run three times each (``--open-repeats``); every
phase is printed, and the summary gives the p99 of the phase with the least steal beside the
median of all.
Every phase is bounded in time; the whole run takes about two minutes once the model is
built (mining it the first time takes about half a minute more).

    .venv/bin/python bench/serving.py [--duration 10] [--connections 16] [--workers 1]

``--capture`` measures only (b), with monitoring capture off and on (every answer recorded in a
fresh SQLite store under the run's temporary folder by the worker's writer process): two servers
of the same build started at once, their load phases alternated ``--capture-repeats`` times
(so that a shared host's drift hits both alike); it prints the ratio of the medians (goal, issue
14: >= 0.9), the CPU per request of the worker and of its writer process, and whether the writer
kept up: what it wrote during each load against the answers, its queue at the load's end, and
its counts once it has written what it held (waited for before the next phase). The other
phases run with capture off (``BASKETRY_MONITOR_CAPTURE=false``), so that their figures stay
comparable and nothing is written to ``~/.basketry``.

Needs the ``serve`` and ``bench`` extras (FastAPI for the bare endpoint, MLflow for (c)) and a C
compiler (or, as a fallback, ``wrk``: Debian ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _host import StealMeter  # bench/ is the script's directory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "retail.dat"
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable

# ---- (a): the bare endpoint, as most Python services are built -----------------------------

BARE_BODY = {"items": [{"item": "85123A", "score": 0.5, "fallback": False}], "model": "bare"}


def bare_app() -> Any:
    """uvicorn factory for contestant (a): FastAPI returning a fixed JSON body."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/bare")
    async def bare() -> dict[str, Any]:
        return BARE_BODY

    return app


# ---- the model and the baskets ---------------------------------------------------------------


def build_model(support: float, confidence: float) -> Path:
    """The retail.dat model, mined once and kept under bench/results (reused when present)."""
    path = RESULTS / f"serving-model-retail-s{support}-c{confidence}"
    if (path / "manifest.json").is_file():
        return path
    from basketry.data import read_baskets
    from basketry.mining import AssociationMiner
    from basketry.training.artifact import save_model

    t = time.perf_counter()
    baskets = read_baskets(DATA)
    miner = AssociationMiner(min_support=support, min_confidence=confidence).fit(baskets)
    save_model(path, miner, baskets, overwrite=True)
    print(f"mined the model in {time.perf_counter() - t:.1f} s: {path}", flush=True)
    return path


def sample_bodies(n: int, k: int, seed: int, max_basket: int) -> list[str]:
    lines = [line.split() for line in DATA.read_text().splitlines() if line.strip()]
    rng = random.Random(seed)
    bodies = []
    for basket in rng.sample(lines, n):
        items = list(dict.fromkeys(basket))[:max_basket]
        bodies.append(json.dumps({"basket": items, "k": k}, separators=(",", ":")))
    return bodies


# ---- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path,
               timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # died at start (a missing module, a taken port...)
            tail = log.read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"server for {url} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout} s")


class Server:
    def __init__(self, args: list[str], env: dict[str, str], ready_url: str, log: Path) -> None:
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
            cwd=ROOT, start_new_session=True)
        try:
            wait_ready(ready_url, self.proc, log)
        except RuntimeError:
            self.stop()
            raise

    def cpu_seconds(self, only: str | None = None) -> float:
        """CPU time (user + system) used so far by the server and its worker processes (and
        theirs: monitoring's writer processes); ``only``: of the processes whose command line
        holds it."""
        total = 0.0
        pids = [self.proc.pid]
        seen: set[int] = set()
        while pids:
            pid = pids.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                if only is None or only in Path(f"/proc/{pid}/cmdline").read_text():
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                for task in Path(f"/proc/{pid}/task").iterdir():  # (a thread's children too)
                    pids.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # what the server started and left behind (mlflow's uvicorn child), in its own session:
        # ended, and waited for, so that it takes no CPU from the next phase
        deadline = time.monotonic() + 10
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
            while time.monotonic() < deadline:
                os.killpg(self.proc.pid, 0)
                time.sleep(0.1)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def start_bare(port: int, workers: int, tmp: Path) -> Server:
    args = [PYTHON, "-m", "uvicorn", "--factory", "serving:bare_app", "--app-dir",
            str(ROOT / "bench"), "--host", "127.0.0.1", "--port", str(port), "--workers",
            str(workers), "--log-level", "warning", "--no-access-log"]
    return Server(args, {}, f"http://127.0.0.1:{port}/docs", tmp / "bare.log")


def start_basketry(port: int, workers: int, model: Path, tmp: Path,
                   capture_db: str | None = None, log_name: str = "basketry.log") -> Server:
    # the service exactly as `basketry serve` runs it, default settings (access log on, JSON);
    # monitoring capture off unless given a store (never the user's ~/.basketry)
    code = ("from basketry.serving import serve; import sys; "
            "serve(model=sys.argv[1], port=int(sys.argv[2]), workers=int(sys.argv[3]))")
    args = [PYTHON, "-c", code, str(model), str(port), str(workers)]
    env = ({"BASKETRY_MONITOR_CAPTURE": "true", "BASKETRY_MONITOR_DB": capture_db}
           if capture_db else {"BASKETRY_MONITOR_CAPTURE": "false"})
    return Server(args, env, f"http://127.0.0.1:{port}/readyz", tmp / log_name)


def start_fixed_cost(port: int, cost_us: float, tmp: Path) -> Server:
    """The host control (bench/_fixed_cost_server.py): every answer costs ``cost_us`` of CPU."""
    args = [PYTHON, str(ROOT / "bench" / "_fixed_cost_server.py"), str(port), str(cost_us)]
    return Server(args, {}, f"http://127.0.0.1:{port}/", tmp / "fixed-cost.log")


# ---- (c): the same model through MLflow's pyfunc flavour and `mlflow models serve` ------------

MLFLOW_PATH = "/invocations"


def mlflow_missing() -> str | None:
    """Why contestant (c) cannot run here, or ``None`` when it can."""
    for module in ("mlflow", "fastapi", "uvicorn", "sqlalchemy", "alembic"):
        if importlib.util.find_spec(module) is None:
            return (f"{module} is not installed (pip install -e '.[bench]' brings MLflow and "
                    f"its scoring server)")
    return None


def log_mlflow_model(model: Path, tmp: Path) -> tuple[str, str]:
    """Log the model as ``basketry train`` does (an MLflow model whose ``python_function``
    flavour is basketry's loader module, the artifact as its data) into a throwaway SQLite
    store under ``tmp``; the model's ``runs:/`` URI and the store's URI."""
    from basketry.training.tracking import TrainingRun

    store = f"sqlite:///{(tmp / 'mlflow.db').resolve()}"
    with TrainingRun(uri=store, experiment="bench-serving", run_name="bench-serving") as run:
        run.log_model(model)
    return f"runs:/{run.run_id}/model", store


def start_mlflow(port: int, workers: int, model_uri: str, store: str, tmp: Path) -> Server:
    # `mlflow models serve` execs `uvicorn` by name: the one beside this interpreter
    path = f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    args = [PYTHON, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    return Server(args, {"MLFLOW_TRACKING_URI": store, "PATH": path},
                  f"http://127.0.0.1:{port}/ping", tmp / "mlflow.log")


def mlflow_bodies(bodies: list[str]) -> list[str]:
    """(b)'s request bodies as one-row ``dataframe_records`` for the pyfunc's ``predict``."""
    return [json.dumps({"dataframe_records": [json.loads(b)]}, separators=(",", ":"))
            for b in bodies]


def post(port: int, path: str, body: str, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read())


def basketry_items(port: int, bodies: list[str]) -> list[list[str]]:
    return [[i["item"] for i in post(port, "/v1/recommendations", b)["items"]] for b in bodies]


def mlflow_items(port: int, bodies: list[str], timeout: float = 10.0) -> list[list[str]]:
    answers = []
    for body in mlflow_bodies(bodies):
        (prediction,) = post(port, MLFLOW_PATH, body, timeout)["predictions"]
        answers.append(list(prediction["items"]))
    return answers


# ---- load generators -------------------------------------------------------------------------

WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
local counter = 0
local headers = {["Content-Type"] = "application/json"}
setup = function(thread) counter = counter + 1; thread:set("offset", counter * 7919) end
init = function(args) i = offset or 0 end
request = function()
  i = i + 1
  return wrk.format("POST", "%(path)s", headers, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %%d, \"errors\": %%d, \"non2xx\": %%d, " ..
    "\"timeouts\": %%d, \"seconds\": %%f, \"p50_ms\": %%f, \"p90_ms\": %%f, \"p99_ms\": %%f, " ..
    "\"mean_ms\": %%f}\n",
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.status, summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


def run_wrk(url: str, path: str, bodies_file: Path, connections: int, duration: float,
            tmp: Path) -> dict[str, Any]:
    script = tmp / f"load-{path.strip('/').replace('/', '-')}.lua"
    script.write_text(WRK_SCRIPT % {"bodies": bodies_file, "path": path})
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s", "--timeout", "5s",
           "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                         check=True).stdout
    match = re.search(r"^JSON (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / result["seconds"]
    return result


PY_CLIENT = r"""
import asyncio, json, sys, time
host, port, path, bodies_file, conns, duration, rate = sys.argv[1:8]
port, conns, duration, rate = int(port), int(conns), float(duration), float(rate)
bodies = [l.encode() for l in open(bodies_file).read().splitlines()]
lat, lat_server, errors, non2xx = [], [], 0, 0
async def worker(n, start):
    # rate > 0: open loop; each connection sends on a fixed schedule (rate / conns per second)
    # and latency counts from the scheduled time, so a slow answer is not hidden by waiting.
    # A second figure leaves out the client's own lateness: the event loop's timers wake up to
    # a millisecond late, and a busy client answers late too. It counts from the scheduled
    # time when the server's previous answer on this connection came after it (the server
    # held the request back), else from the moment the request was sent.
    global errors, non2xx
    r, w = await asyncio.open_connection(host, port)
    i = n * 7919
    interval = conns / rate if rate > 0 else 0.0
    due = start + n * interval / conns
    end = start + duration
    answered = 0.0
    while True:
        now = time.perf_counter()
        if rate > 0:
            if due >= end:
                break
            if due > now:
                await asyncio.sleep(due - now)
            t = due
            due += interval
        else:
            if now >= end:
                break
            t = now
        body = bodies[i % len(bodies)]; i += 1
        sent = time.perf_counter()
        w.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        try:
            head = await r.readuntil(b"\r\n\r\n")
            size = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await r.readexactly(size)
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            errors += 1
            break
        done = time.perf_counter()
        lat.append(done - t)
        lat_server.append(done - (t if answered > t else sent))
        answered = done
        if not head.startswith(b"HTTP/1.1 2"):
            non2xx += 1
    w.close()
async def main():
    start = time.perf_counter() + 0.05
    await asyncio.gather(*(worker(n, start) for n in range(conns)))
    return time.perf_counter() - start
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
secs = asyncio.run(main())
lat.sort()
lat_server.sort()
q = lambda p, a=lat: a[min(len(a) - 1, int(p * len(a)))] * 1000
print("JSON " + json.dumps({"requests": len(lat), "errors": errors, "non2xx": non2xx,
      "timeouts": 0, "seconds": secs, "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99),
      "mean_ms": sum(lat) / len(lat) * 1000, "p50_ms_without_client_lateness":
      q(0.5, lat_server), "p99_ms_without_client_lateness": q(0.99, lat_server)}))
"""


def build_loadgen(tmp: Path) -> Path | None:
    """bench/loadgen.c compiled with the machine's C compiler (None without one)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    exe = tmp / "loadgen"
    subprocess.run([compiler, "-O2", "-o", str(exe), str(ROOT / "bench" / "loadgen.c")],
                   check=True, capture_output=True)
    return exe


def with_steal(phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a load phase and add ``host_steal_cores``: the share of a core the hypervisor gave
    to other guests meanwhile. On a virtual machine that time is lost to whoever wanted it (the
    server, the client), and it shows in p99."""
    steal = StealMeter()
    result = phase()
    result["host_steal_cores"] = steal.share()
    return result


def on_server(server: Server, phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A load phase with the host's steal (``with_steal``) and the server's CPU time during it:
    ``server_cpu_us_per_request`` and ``server_core_share`` (the share of one core it used)."""
    cpu = server.cpu_seconds()
    result = with_steal(phase)
    used = server.cpu_seconds() - cpu
    result["server_cpu_us_per_request"] = used / result["requests"] * 1e6
    result["server_core_share"] = used / result["seconds"]
    return result


def run_client(client: str, port: int, path: str, bodies_file: Path, connections: int,
               duration: float, tmp: Path, rate: float = 0.0) -> dict[str, Any]:
    """One phase of ``client`` (the compiled loadgen's path, or "python" for the asyncio
    client): closed loop at rate 0, else open loop at ``rate`` requests/s."""
    args = ["127.0.0.1", str(port), path, str(bodies_file), str(connections), str(duration),
            str(rate)]
    if client == "python":
        script = tmp / "client.py"
        script.write_text(PY_CLIENT)
        cmd = [PYTHON, str(script), *args]
    else:
        cmd = [client, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                         check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"^JSON (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"the client printed no summary:\n{out}")
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / result["seconds"]
    # the client's own CPU time: on a small shared machine it competes with the server
    result["client_cpu_seconds"] = (after.ru_utime - before.ru_utime
                                    + after.ru_stime - before.ru_stime)
    return result


def load(tool: str, port: int, path: str, bodies_file: Path, connections: int, duration: float,
         tmp: Path) -> dict[str, Any]:
    """Closed loop: every connection sends its next request as soon as it has an answer."""
    if tool == "wrk":
        return run_wrk(f"http://127.0.0.1:{port}", path, bodies_file, connections, duration, tmp)
    return run_client(tool, port, path, bodies_file, connections, duration, tmp)


def show(name: str, r: dict[str, Any]) -> None:
    cpu = r.get("server_cpu_us_per_request")
    steal = r.get("host_steal_cores")
    print(f"  {name:<34} {r['rps']:>9,.0f} req/s   p50 {r['p50_ms']:6.2f} ms   "
          f"p99 {r['p99_ms']:6.2f} ms   errors {r['errors'] + r['non2xx'] + r['timeouts']}"
          + (f"   server CPU {cpu:5.0f} us/request" if cpu else "")
          + (f"   host steal {steal:.0%} of a core" if steal is not None else ""), flush=True)
    if "p99_ms_without_client_lateness" in r:
        print(f"  {'':<34} {'':>15}   p50 {r['p50_ms_without_client_lateness']:6.2f} ms   "
              f"p99 {r['p99_ms_without_client_lateness']:6.2f} ms   without the client's own "
              "lateness", flush=True)


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options of a load phase, shared with bench/stack.py."""
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--baskets", type=int, default=5000, help="baskets sampled from the data")
    parser.add_argument("--seed", type=int, default=7)


MONITOR_COUNTS = re.compile(r'^basketry_monitor_events_total\{outcome="(\w+)"\} (\S+)$', re.M)
MONITOR_QUEUE = re.compile(r"^basketry_monitor_queue_depth (\S+)$", re.M)
ANSWERED = re.compile(r'^basketry_http_requests_total\{endpoint="[^"]*recommendations",'
                      r'method="POST",status="200"\} (\S+)$', re.M)
#: The command line of monitoring's writer processes (basketry.monitoring.writer_main).
WRITER = "basketry.monitoring.writer_main"
#: Seconds the writer gets, after a load, to write what it still holds.
DRAIN_SECONDS = 60.0


def monitor_state(port: int) -> dict[str, float]:
    """The writer's counters from /metrics, its queue, and the recommendations answered."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as m:
        text = m.read().decode()
    state = {k: float(v) for k, v in MONITOR_COUNTS.findall(text)}
    state["queue_depth"] = sum(float(v) for v in MONITOR_QUEUE.findall(text))
    state["answered"] = sum(float(v) for v in ANSWERED.findall(text))
    return state


def drained(port: int) -> tuple[dict[str, float], float]:
    """The writer's state once it has written what it held (or after ``DRAIN_SECONDS``), and
    how long that took."""
    t = time.perf_counter()
    while True:
        state = monitor_state(port)
        accounted = sum(state.get(k, 0.0) for k in ("written", "dropped", "failed"))
        if accounted >= state["answered"] or time.perf_counter() - t > DRAIN_SECONDS:
            return state, time.perf_counter() - t
        time.sleep(0.05)


def _capture_phases(tool: str, servers: dict[str, tuple[Server, int]], bodies: Path,
                    args: argparse.Namespace, tmp: Path,
                    runs: dict[str, list[dict[str, Any]]]) -> None:
    """The alternated load phases of :func:`capture_comparison`, into ``runs``."""
    for i in range(args.capture_repeats):
        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
            server, port = servers[mode]
            if mode == "on":
                before, _ = drained(port)  # what came before written: a clean start
            writer_cpu = server.cpu_seconds(WRITER)
            r = on_server(server, lambda p=port: load(tool, p, "/v1/recommendations", bodies,
                                               args.connections, args.duration, tmp))
            # the writer processes' share of the server's CPU, and the workers' own
            r["writer_cpu_us_per_request"] = ((server.cpu_seconds(WRITER) - writer_cpu)
                                              / r["requests"] * 1e6)
            r["worker_cpu_us_per_request"] = (r["server_cpu_us_per_request"]
                                              - r["writer_cpu_us_per_request"])
            if mode == "on":
                end = monitor_state(port)
                final, drain = drained(port)
                offered = final["answered"] - before["answered"]
                written = end.get("written", 0.0) - before.get("written", 0.0)
                r["monitor"] = {
                    "at_end_of_load": end, "after_drain": final, "drain_seconds": drain,
                    "offered_in_load": offered,
                    "written_during_load_per_second": written / r["seconds"],
                    "written_of_offered_in_load": written / offered if offered else 0.0,
                    "all_written": final.get("written", 0.0) == final["answered"]
                    and not final.get("dropped") and not final.get("failed")}
            runs[mode].append(r)
            show(f"(b) capture {mode}, run {i + 1}", r)
            print(f"      CPU per request: the worker {r['worker_cpu_us_per_request']:.0f} us, "
                  f"the writer process {r['writer_cpu_us_per_request']:.0f} us; load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            if mode == "on":
                m = r["monitor"]
                f = m["after_drain"]
                queue = m["at_end_of_load"]["queue_depth"]
                print(f"      monitoring writer: {m['written_during_load_per_second']:,.0f} "
                      f"events/s written during the load ({m['written_of_offered_in_load']:.0%} "
                      f"of those answered meanwhile), queue {queue:,.0f} at its end; "
                      f"after {m['drain_seconds']:.1f} s: written "
                      f"{f.get('written', 0):,.0f} of {f['answered']:,.0f} answered, dropped "
                      f"{f.get('dropped', 0):,.0f}, failed {f.get('failed', 0):,.0f}", flush=True)


def capture_comparison(tool: str, model: Path, bodies: Path, args: argparse.Namespace,
                       tmp: Path) -> dict[str, Any]:
    """(b) with monitoring capture off and on (every answer recorded in a fresh SQLite store):
    both servers started at once (the same build), then their load phases alternated
    ``--capture-repeats`` times, each pair in turn order, so that the host's drift (other
    processes on a shared machine) hits both alike; the ratio of the medians. With capture on,
    the writer's counts at the end of each load and once it has written what it held (waited
    for before the next phase): whether it kept up (its rate over the load, against the
    requests')."""
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    servers: dict[str, tuple[Server, int]] = {}
    try:
        for mode in ("off", "on"):
            port = free_port()
            db = f"sqlite:///{tmp / 'monitoring.db'}" if mode == "on" else None
            servers[mode] = (start_basketry(port, args.workers, model, tmp, capture_db=db,
                                            log_name=f"basketry-{mode}.log"), port)
            load(tool, port, "/v1/recommendations", bodies, args.connections, args.warmup, tmp)
        _capture_phases(tool, servers, bodies, args, tmp, runs)
    finally:
        for server, _ in servers.values():
            server.stop()
    off = statistics.median(r["rps"] for r in runs["off"])
    on = statistics.median(r["rps"] for r in runs["on"])
    cpu_off = statistics.median(r["server_cpu_us_per_request"] for r in runs["off"])
    cpu_on = statistics.median(r["server_cpu_us_per_request"] for r in runs["on"])
    worker_off = statistics.median(r["worker_cpu_us_per_request"] for r in runs["off"])
    worker_on = statistics.median(r["worker_cpu_us_per_request"] for r in runs["on"])
    kept_up = all(r["monitor"]["all_written"] for r in runs["on"])
    print(f"\n  capture on/off = {on / off:.2f} (goal >= 0.9): {on:,.0f} vs {off:,.0f} req/s, "
          f"medians of {args.capture_repeats}; server CPU per request (the writer process's "
          f"included) {cpu_on:.0f} vs {cpu_off:.0f} us, the worker's own {worker_on:.0f} vs "
          f"{worker_off:.0f} us (off/on = {worker_off / worker_on:.2f}); every answer written, "
          "none dropped: "
          f"{'yes' if kept_up else 'no'}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores", flush=True)
    return {"capture_off": runs["off"], "capture_on": runs["on"], "ratio_on_off": on / off,
            "cpu_ratio_off_on": cpu_off / cpu_on,
            "worker_cpu_ratio_off_on": worker_off / worker_on, "all_written": kept_up,
            "load_average_after": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser)
    parser.add_argument("--support", type=float, default=0.0002)
    parser.add_argument("--confidence", type=float, default=0.1)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--open-repeats", type=int, default=3,
                        help="open-loop phases of (b) and of the control (each reported)")
    parser.add_argument("--load", choices=("auto", "loadgen", "wrk", "python"), default="auto",
                        help="closed-loop load generator (auto: loadgen when a C compiler is "
                             "there, else wrk, else python); open loop: loadgen, else python")
    parser.add_argument("--model", type=Path, default=None,
                        help="serve this model directory instead of mining retail.dat")
    parser.add_argument("--capture", action="store_true",
                        help="only compare (b) with monitoring capture off and on")
    parser.add_argument("--capture-repeats", type=int, default=3,
                        help="alternated off/on runs of --capture")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"{DATA} is missing", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    model = args.model or build_model(args.support, args.confidence)
    manifest = json.loads((model / "manifest.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="basketry-bench-"))
    loadgen = None if args.load in ("wrk", "python") else build_loadgen(tmp)
    if args.load == "loadgen" and loadgen is None:
        print("--load loadgen needs a C compiler (cc or gcc)", file=sys.stderr)
        return 2
    if loadgen is not None:
        tool = str(loadgen)
    elif args.load == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    else:
        tool = args.load
    # open loop: the compiled client when there is one (same client as the closed loop)
    open_loop = str(loadgen) if loadgen is not None else "python"
    tool_name = "loadgen (bench/loadgen.c)" if loadgen is not None else tool
    sampled = sample_bodies(args.baskets, args.k, args.seed, 100)
    bodies = tmp / "baskets.jsonl"
    bodies.write_text("\n".join(sampled) + "\n")
    check_bodies = sampled[:20]  # (c)'s answers to these must be (b)'s
    bare_bodies = tmp / "bare.jsonl"
    bare_bodies.write_text('{"basket":["85123A"],"k":5}\n')
    print(f"model {manifest['model_version']}: {manifest['counts']['n_rules']:,} rules, "
          f"{manifest['counts']['n_items']:,} items, scoring {manifest.get('scoring')}; "
          f"{args.baskets} baskets sampled from "
          f"{DATA.name}; load: {tool_name}, {args.connections} connections, {args.workers} "
          f"worker(s), {args.duration:.0f} s per run", flush=True)

    if args.capture:
        load_before = os.getloadavg()
        try:
            compared = capture_comparison(tool, model, bodies, args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out = RESULTS / "serving_capture.json"
        out.write_text(json.dumps({"settings": {**vars(args), "model": str(model)},
                                   "tool": tool_name, "model": manifest["model_version"],
                                   "load_average_before": load_before,
                                   **compared}, indent=2, default=str) + "\n")
        print(f"  figures written to {out.relative_to(ROOT)}")
        return 0
    results: dict[str, Any] = {"settings": {**vars(args), "model": str(model)}, "tool": tool_name,
                               "scoring": manifest.get("scoring"),
                               "load_average_before": os.getloadavg(),
                               "model": manifest["model_version"],
                               "rules": manifest["counts"]["n_rules"]}
    try:
        port = free_port()
        server = start_bare(port, args.workers, tmp)
        try:
            load(tool, port, "/bare", bare_bodies, args.connections, args.warmup, tmp)
            a = on_server(server, lambda: load(tool, port, "/bare", bare_bodies,
                                               args.connections, args.duration, tmp))
            # the control of (b)'s open-loop phase: the same load shape at 80% of a's peak
            # shows what the machine, the client and the common stack add to p99 by themselves
            aos = [with_steal(lambda: run_client(open_loop, port, "/bare", bare_bodies,
                                                 args.connections, args.duration, tmp,
                                                 rate=0.8 * a["rps"]))
                   for _ in range(args.open_repeats)]
        finally:
            server.stop()
        show("(a) bare FastAPI + uvicorn", a)
        c_skipped = mlflow_missing()

        port = free_port()
        server = start_basketry(port, args.workers, model, tmp)
        try:
            load(tool, port, "/v1/recommendations", bodies, args.connections, args.warmup, tmp)
            b = on_server(server, lambda: load(tool, port, "/v1/recommendations", bodies,
                                               args.connections, args.duration, tmp))
            show("(b) basketry /v1/recommendations", b)
            # rate-limited (open loop; wrk has no fixed-rate mode): 80% of b's
            # peak, latency counted from each request's scheduled time
            target = 0.8 * b["rps"]

            def open_phase() -> dict[str, Any]:
                o = on_server(server, lambda: run_client(
                    open_loop, port, "/v1/recommendations", bodies, args.connections,
                    args.duration, tmp, rate=target))
                o["target_rps"] = target
                # what this rate needs of a core at the closed loop's cost per request (beside
                # the share the server used)
                o["server_core_needed"] = target * b["server_cpu_us_per_request"] / 1e6
                return o

            os_ = [open_phase() for _ in range(args.open_repeats)]
            expected = basketry_items(port, check_bodies) if c_skipped is None else []
        finally:
            server.stop()

        # the host control: a server whose answers cost (b)'s closed-loop CPU per request and
        # never more (see bench/_fixed_cost_server.py), at 80% of its own peak. Its work is set
        # in two steps: a first guess, then corrected by what the warm-up measured of the
        # whole cost per request (its own overhead included: event loop, parsing, system calls)
        def warm_up(server: Server, port: int) -> float:
            """The closed-loop warm-up; the server's CPU per request during it."""
            warm = on_server(server, lambda: load(tool, port, "/v1/recommendations", bodies,
                                                  args.connections, args.warmup, tmp))
            return float(warm["server_cpu_us_per_request"])

        cost = 0.85 * b["server_cpu_us_per_request"]
        port = free_port()
        server = start_fixed_cost(port, cost, tmp)
        try:
            measured = warm_up(server, port)
        finally:
            server.stop()
        cost = max(cost + b["server_cpu_us_per_request"] - measured, 0.0)
        port = free_port()
        server = start_fixed_cost(port, cost, tmp)
        try:
            warm_up(server, port)
            h = on_server(server, lambda: load(tool, port, "/v1/recommendations", bodies,
                                               args.connections, args.duration, tmp))
            h["work_us"] = cost
            show("(h) host control: fixed-cost server", h)
            hos = [on_server(server, lambda: run_client(
                open_loop, port, "/v1/recommendations", bodies, args.connections,
                args.duration, tmp, rate=0.8 * h["rps"])) for _ in range(args.open_repeats)]
        finally:
            server.stop()

        c: dict[str, Any] | None = None
        if c_skipped is None:
            t = time.perf_counter()
            model_uri, store = log_mlflow_model(model, tmp)
            c_bodies = tmp / "invocations.jsonl"
            c_bodies.write_text("\n".join(mlflow_bodies(sampled)) + "\n")
            port = free_port()
            server = start_mlflow(port, args.workers, model_uri, store, tmp)
            try:
                ready = time.perf_counter() - t
                # generous: mlflow's scoring server has no warm-up, so its first answer loads
                # the compiled scoring code (and compiles it if the numba cache is stale)
                answers = mlflow_items(port, check_bodies[:1], timeout=120)
                print(f"  (c) logged as {model_uri}, serving after {ready:.1f} s, first answer "
                      f"after {time.perf_counter() - t - ready:.2f} s", flush=True)
                answers += mlflow_items(port, check_bodies[1:])
                same = sum(x == y for x, y in zip(answers, expected, strict=True))
                if same != len(expected) or not any(expected):
                    raise RuntimeError(
                        f"mlflow models serve answered {same} of {len(expected)} baskets as "
                        f"basketry does:\n  basketry {expected[:3]}\n  mlflow   {answers[:3]}")
                load(tool, port, MLFLOW_PATH, c_bodies, args.connections, args.warmup, tmp)
                c = on_server(server, lambda: load(tool, port, MLFLOW_PATH, c_bodies,
                                                   args.connections, args.duration, tmp))
                c["checked_baskets"] = same
            finally:
                server.stop()
            show("(c) mlflow models serve /invocations", c)
            print(f"      its answers to {same} baskets: the same items as (b)'s", flush=True)
        else:
            print(f"  (c) mlflow models serve: skipped, {c_skipped}", flush=True)
        for ao in aos:
            show(f"(a) open loop at {ao['rps'] / a['rps']:.0%} of peak (control)", ao)
        for o in os_:
            show(f"(b) open loop at {o['rps'] / b['rps']:.0%} of peak", o)
            print(f"      the server used {o['server_core_share']:.0%} of a core "
                  f"(this rate needs about {o['server_core_needed']:.0%} at the closed loop's "
                  f"cost per request); the client used "
                  f"{o['client_cpu_seconds'] / o['seconds']:.0%}", flush=True)
        print(f"  the host control spends {h['work_us']:.0f} us of CPU on each answer, besides "
              "its event loop's own:", flush=True)
        for ho in hos:
            show(f"(h) open loop at {ho['rps'] / h['rps']:.0%} of peak", ho)
            print(f"      the server used {ho['server_core_share']:.0%} of a core", flush=True)
        # on a shared virtual machine the host's steal time sets the tail: the phase with the
        # least of it shows the server, the median what this host gave this hour
        ao = min(aos, key=lambda r: r["host_steal_cores"])
        o = min(os_, key=lambda r: r["host_steal_cores"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = b["rps"] / a["rps"]
    cpu_ratio = a["server_cpu_us_per_request"] / b["server_cpu_us_per_request"]
    results.update(bare=a, bare_rate_limited=aos, recommendations=b, rate_limited=os_,
                   host_control=h, host_control_rate_limited=hos, mlflow=c,
                   mlflow_skipped=c_skipped, ratio=ratio, cpu_ratio=cpu_ratio,
                   load_average_after=os.getloadavg())
    print(f"\n  ratio b/a = {ratio:.2f} (goal >= 1.0)   p99 at {o['rps']:,.0f} req/s = "
          f"{o['p99_ms']:.2f} ms in the open-loop phase with the least host steal "
          f"({o['host_steal_cores']:.0%} of a core; goal < 10 ms), median of "
          f"{len(os_)} phases {statistics.median(r['p99_ms'] for r in os_):.2f} ms; the bare "
          f"endpoint's control: {ao['p99_ms']:.2f} ms (steal {ao['host_steal_cores']:.0%}), "
          f"median {statistics.median(r['p99_ms'] for r in aos):.2f} ms")
    print(f"  the host control (the same CPU per request, never more) at 80% of its peak: p99 "
          f"under 10 ms in {sum(r['p99_ms'] < 10 for r in hos)} of {len(hos)} phases, "
          f"{min(r['p99_ms'] for r in hos):.2f} ms at best, median "
          f"{statistics.median(r['p99_ms'] for r in hos):.2f} ms; (b): "
          f"{sum(r['p99_ms'] < 10 for r in os_)} of {len(os_)}")
    if c is not None:
        results.update(ratio_b_c=b["rps"] / c["rps"], ratio_c_a=c["rps"] / a["rps"],
                       cpu_ratio_c_b=c["server_cpu_us_per_request"]
                       / b["server_cpu_us_per_request"])
        print(f"  ratio b/c = {results['ratio_b_c']:.1f} (what basketry's server buys over "
              f"mlflow models serve)   c/a = {results['ratio_c_a']:.2f}")
    # on a shared machine throughput follows the CPU share the server gets; the server's own
    # CPU time per request does not, so its ratio is the steadier estimate of b/a
    print(f"  server CPU per request, a/b = {cpu_ratio:.2f} (b/a on an otherwise idle core)"
          + (f", c/b = {results['cpu_ratio_c_b']:.1f}" if c is not None else "")
          + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    out = RESULTS / "serving.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"  figures written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
