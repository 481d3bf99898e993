"""The host control of bench/serving.py: an HTTP/1.1 server whose every answer costs a fixed
CPU time, whatever the state of the caches.

    python bench/_fixed_cost_server.py PORT COST_US

One uvloop worker, keep-alive connections; every ``POST`` is answered with a fixed JSON body
after spinning until the thread has used ``COST_US`` microseconds of CPU (``thread_time``: time
the hypervisor takes the virtual CPU away does not count, so a pause delays the answer as it
delays real work). The answer's cost so does not grow when caches are cold or the branch
predictors are retrained, as the Python code of a real service does in an open loop on this
virtual machine. At 80% of its own closed-loop peak it is 80% busy in the open loop too, so its
p99 there is what the host (the hypervisor's pauses, the loopback, the client) leaves to any
server at that utilisation: the best p99 the issue's measurement can show on this machine.
"""

from __future__ import annotations

import asyncio
import sys
import time

import uvloop

BODY = b'{"items":[],"model":"fixed-cost"}'
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
          % (len(BODY), BODY))


class FixedCost(asyncio.Protocol):
    def __init__(self, cost: float) -> None:
        self.cost = cost
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        answers = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            at = head.find(b"\ncontent-length:")
            length = int(head[at + 16:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(buffer) < end + 4 + length:
                break  # the body is not all here yet
            buffer = buffer[end + 4 + length:]
            if head.startswith(b"post "):
                until = time.thread_time() + self.cost
                while time.thread_time() < until:
                    pass
            answers.append(ANSWER)
        self.buffer = buffer
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))


async def main(port: int, cost_us: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FixedCost(cost_us * 1e-6), "127.0.0.1", port,
                                      backlog=1024)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), float(sys.argv[2])))
