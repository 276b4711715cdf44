"""A small HTTP/1.1 load generator (keep-alive, N connections, a fixed time), wrk's job.

No wrk on these machines, and nothing from PyPI is needed for this: asyncio
streams, one event loop. It shares the 2 cores with the server it measures (as
wrk does), so the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[int, int]
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: int) -> float:
        """p-th percentile latency in milliseconds."""
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


def _request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(
    host: str,
    port: int,
    make: Callable[[int], bytes],
    stop_at: float,
    result: LoadResult,
    interval: float | None,
    offset: float = 0.0,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    next_at = time.monotonic() + offset
    try:
        while time.monotonic() < stop_at:
            if interval is not None:  # open model: send on schedule, not as fast as answers come
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            started = time.monotonic()
            writer.write(make(n))
            n += 1
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()  # the server closed it (max_requests, keep-alive): reconnect
                reader, writer = await asyncio.open_connection(host, port)
                continue
            result.latencies.append(time.monotonic() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.requests += 1
    finally:
        writer.close()


def run(
    *,
    host: str,
    port: int,
    method: str,
    paths: Callable[[int], str],
    connections: int,
    seconds: float,
    headers: dict[str, str],
    bodies: Callable[[int], bytes] | None = None,
    rate: float | None = None,
) -> LoadResult:
    """`connections` keep-alive connections send requests for `seconds`; `rate` (per second, over
    all connections) paces them instead of sending the next as soon as the answer is in."""
    result = LoadResult(0, 0.0, {}, [])
    header_host = headers.pop("Host", f"{host}:{port}")
    interval = connections / rate if rate else None

    async def main() -> None:
        started = time.monotonic()
        stop_at = started + seconds
        tasks = []
        for index in range(connections):

            def make(n: int, index: int = index) -> bytes:
                count = n * connections + index
                body = bodies(count) if bodies else b""
                return _request(method, paths(count), header_host, headers, body)

            # Paced connections start staggered, so the rate is spread evenly, not sent in bursts of `connections`.
            offset = interval * index / connections if interval is not None else 0.0
            tasks.append(_connection(host, port, make, stop_at, result, interval, offset))
        await asyncio.gather(*tasks)
        result.seconds = time.monotonic() - started

    asyncio.run(main())
    return result
