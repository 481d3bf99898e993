"""A real HTTP receiver on 127.0.0.1 for the webhook tests: it records what it is sent and
answers as told (a list of statuses, then 200), or holds each request until released."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, statuses: list[int] | None = None, *, hang: bool = False,
                 path: str = "/hook") -> None:
        self.statuses = list(statuses or [])
        self.hang = hang
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.entered = threading.Event()  # a request arrived (and, hanging, is being held)
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it so
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.bodies.append(body)
                    receiver.headers.append(dict(self.headers))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.entered.set()
                if receiver.hang:
                    receiver.release.wait(30)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(b) for b in self.bodies]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def refused_url(path: str = "/hook/s3cr3t-token") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
