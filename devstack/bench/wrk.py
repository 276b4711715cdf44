"""wrk (Debian's `wrk` package) as the load generator for the API figures.

wrk is C and uses far less of the 2 shared cores than a Python client, so the
server gets more of them. A Lua script varies the customer per request
(`{n}` in the path or body becomes the request's number modulo `spread`, 1000 unless
told) and prints
one JSON line at the end: requests, seconds, errors, latency percentiles.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_SCRIPT = """
local counter = 0
local path_format = %(path)s
local body_format = %(body)s
wrk.method = %(method)s
%(headers)s
request = function()
  counter = counter + 1
  local n = tostring(counter %% %(spread)d)
  local body = nil
  if body_format ~= "" then body = string.gsub(body_format, "{n}", n) end
  return wrk.format(nil, (string.gsub(path_format, "{n}", n)), nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %%d, "seconds": %%.3f, "status_errors": %%d, "socket_errors": %%d,'
    .. ' "p50_ms": %%.1f, "p95_ms": %%.1f, "p99_ms": %%.1f}\\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(text: str) -> str:
    """A Lua string literal (JSON's escapes are Lua's for ASCII text)."""
    if not text.isascii():
        raise ValueError("wrk scripts here take ASCII only")
    return json.dumps(text)


def run(
    *,
    url: str,
    method: str,
    path: str,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    body: str = "",
    threads: int = 2,
    spread: int = 1000,
) -> dict[str, Any]:
    """Run wrk against `url` + `path` (`{n}` varies per request over `spread` values) and return its summary:
    requests, seconds, rps, status_errors (answers not 2xx/3xx), socket_errors, p50/p95/p99_ms."""
    header_lines = "\n".join(f"wrk.headers[{_lua(name)}] = {_lua(value)}" for name, value in headers.items())
    script = _SCRIPT % {
        "path": _lua(path), "body": _lua(body), "method": _lua(method), "headers": header_lines, "spread": spread,
    }  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        done = subprocess.run(
            [
                "wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                "--timeout", "10s", "-s", handle.name, url,
            ],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
    finally:
        Path(handle.name).unlink()
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRK-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRK-RESULT "))
    result["rps"] = round(result["requests"] / result["seconds"], 1) if result["seconds"] else 0.0
    return result
