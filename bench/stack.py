"""Stack benchmark: the framework, server and JSON library of basketry's service, chosen on
measurement.

Part 1, in one run with the same load generator (``bench/loadgen.c``, closed loop), the same
worker count and connection count, on loopback: each framework's bare applications from
``bench/_stack_apps.py`` (FastAPI, Litestar, Starlette and a framework-less ASGI callable)
under uvicorn (uvloop, httptools), and under granian when it is installed: ``POST /bare``
(a fixed JSON body) and ``POST /validated`` (the request body validated as a recommendation
request with the framework's own types, an answer of a fixed shape), with baskets sampled from
retail.dat. It prints throughput, p50/p99, the server's CPU per request and the ratio to
FastAPI + uvicorn, the common stack.

Part 2, in process: encoding basketry's real answer documents (the retail.dat model's answers
to the sampled baskets) and decoding the requests, with the standard library's ``json``,
``orjson``, msgspec (untyped, and typed with validation as the service does) and pydantic
(typed with validation, as FastAPI does): microseconds per document.

    .venv/bin/python bench/stack.py [--duration 10] [--connections 16] [--workers 1]

Needs the ``serve`` and ``bench`` extras (FastAPI, granian, orjson) and a C compiler.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _host import StealMeter  # bench/ is the script's directory
from serving import (
    DATA,
    PYTHON,
    RESULTS,
    ROOT,
    Server,
    add_load_options,
    build_loadgen,
    build_model,
    free_port,
    run_client,
    sample_bodies,
)

FRAMEWORKS = ("fastapi", "litestar", "starlette", "raw_asgi")
LABEL = {"fastapi": "FastAPI", "litestar": "Litestar", "starlette": "Starlette",
         "raw_asgi": "bare ASGI (no framework)"}


def start(server: str, framework: str, port: int, workers: int, tmp: Path) -> Server:
    target = f"_stack_apps:{framework}_app"
    if server == "uvicorn":
        args = [PYTHON, "-m", "uvicorn", "--factory", target, "--app-dir", str(ROOT / "bench"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log"]
    else:
        args = [PYTHON, "-m", "granian", "--interface", "asgi", "--factory", "--host",
                "127.0.0.1", "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
                "--http", "1", "--log-level", "warning", "--no-access-log", "--working-dir",
                str(ROOT / "bench"), target]
    return Server(args, {}, f"http://127.0.0.1:{port}/ready", tmp / f"{server}-{framework}.log")


def measure(server: Server, port: int, path: str, bodies: Path, args: argparse.Namespace,
            loadgen: str, tmp: Path) -> dict[str, Any]:
    run_client(loadgen, port, path, bodies, args.connections, args.warmup, tmp)
    steal = StealMeter()
    cpu = server.cpu_seconds()
    r = run_client(loadgen, port, path, bodies, args.connections, args.duration, tmp)
    r["server_cpu_us_per_request"] = (server.cpu_seconds() - cpu) / r["requests"] * 1e6
    r["host_steal_cores"] = steal.share()
    return r


def servers_part(args: argparse.Namespace, loadgen: str, baskets: Path, tmp: Path
                 ) -> dict[str, dict[str, Any]]:
    servers = ["uvicorn"] + (["granian"] if importlib.util.find_spec("granian") else [])
    if len(servers) == 1:
        print("  (granian is not installed: uvicorn only)")
    results: dict[str, dict[str, Any]] = {}
    for server_name in servers:
        for framework in FRAMEWORKS:
            port = free_port()
            server = start(server_name, framework, port, args.workers, tmp)
            try:
                for path in ("/bare", "/validated"):
                    if framework == "raw_asgi" and path == "/validated":
                        continue
                    r = measure(server, port, path, baskets, args, loadgen, tmp)
                    errors = r["errors"] + r["non2xx"] + r["timeouts"]
                    name = f"{LABEL[framework]} + {server_name} {path}"
                    results[name] = r
                    base = results.get(f"FastAPI + uvicorn {path}")
                    ratio = f"{r['rps'] / base['rps']:5.2f}x FastAPI+uvicorn" if base else ""
                    print(f"  {name:<42} {r['rps']:>8,.0f} req/s  p50 {r['p50_ms']:5.2f} ms  "
                          f"p99 {r['p99_ms']:6.2f} ms  server CPU "
                          f"{r['server_cpu_us_per_request']:4.0f} us/req  errors {errors}  "
                          f"steal {r['host_steal_cores']:.0%}  {ratio}", flush=True)
            finally:
                server.stop()
    return results


def best_us(fn: Callable[[Any], Any], items: list[Any], repeat: int = 5) -> float:
    """Best of ``repeat`` passes over ``items``: microseconds per item."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def json_part(model: Path, sampled: list[str]) -> dict[str, dict[str, float]]:
    """Encoding basketry's answers and decoding the requests, per library."""
    import msgspec
    import orjson
    from pydantic import BaseModel, Field

    from basketry.model import load_model
    from basketry.serving.decoding import strict_decoder
    from basketry.serving.schemas import build_schemas

    loaded = load_model(model)
    requests = [json.loads(b) for b in sampled]
    answers = []
    for req in requests:
        rec = loaded.recommend(req["basket"], k=req.get("k", 5))
        answers.append({
            "items": [{"item": r.item, "label": None, "score": r.score, "fallback": r.fallback,
                       "rule": None if r.rule is None else {
                           "antecedent": list(r.rule.antecedent), "confidence": r.rule.confidence,
                           "lift": r.rule.lift, "support": r.rule.support, "count": r.rule.count}}
                      for r in rec.items],
            "unknown": rec.unknown, "request_id": "0123456789abcdef",
            "model_version": rec.model_version})
    bodies = [b.encode() for b in sampled]
    schemas = build_schemas(max_basket=100, max_k=50, default_k=5, max_exclude=100,
                            max_batch=100, max_item_length=128)
    typed = strict_decoder(schemas.recommendation)

    class Request(BaseModel):  # the request type as a FastAPI service would declare it
        model_config = {"extra": "forbid", "strict": True}
        basket: list[str] = Field(max_length=100)
        k: int = Field(5, ge=1, le=50)
        exclude: list[str] = Field(default_factory=list, max_length=100)

    encoder = msgspec.json.Encoder()
    out = {
        "encode the answer": {
            "json": best_us(lambda a: json.dumps(a).encode(), answers),
            "orjson": best_us(orjson.dumps, answers),
            "msgspec": best_us(encoder.encode, answers),
        },
        "decode the request": {
            "json": best_us(json.loads, bodies),
            "orjson": best_us(orjson.loads, bodies),
            "msgspec (untyped)": best_us(msgspec.json.decode, bodies),
            "msgspec (typed, validated: the service)": best_us(typed, bodies),
            "pydantic (typed, validated: FastAPI)": best_us(Request.model_validate_json, bodies),
        },
    }
    for what, libs in out.items():
        base = libs["json"]
        print(f"  {what}: " + ", ".join(f"{lib} {us:.2f} us ({base / us:.1f}x json)"
                                       for lib, us in libs.items()), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser)
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"{DATA} is missing", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="basketry-stack-"))
    loadgen = build_loadgen(tmp)
    if loadgen is None:
        print("needs a C compiler (cc or gcc) for bench/loadgen.c", file=sys.stderr)
        return 2
    sampled = sample_bodies(args.baskets, 5, args.seed, 100)
    baskets = tmp / "baskets.jsonl"
    baskets.write_text("\n".join(sampled) + "\n")
    print(f"{args.baskets} baskets sampled from {DATA.name}; loadgen (bench/loadgen.c), "
          f"{args.connections} connections, {args.workers} worker(s), {args.duration:.0f} s per "
          f"run; load average {os.getloadavg()[0]:.1f}", flush=True)
    steal = StealMeter()
    results: dict[str, Any] = {"settings": vars(args)}
    results["servers"] = servers_part(args, str(loadgen), baskets, tmp)
    print("JSON, in process, per document (best of 5 passes over the sampled baskets):")
    results["json"] = json_part(build_model(0.0002, 0.1), sampled)
    results["host_steal_cores"] = steal.share()
    print(f"the host's steal time over the run: {results['host_steal_cores']:.0%} of a core; "
          f"load average {os.getloadavg()[0]:.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stack.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"figures written to {RESULTS / 'stack.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
