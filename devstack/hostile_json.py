"""python -m devstack.hostile_json [--kb N,N]: what the JSON depth check costs per KB of hostile bodies.

Each shape opens DEEP brackets (more than MAX_DEPTH) first, so the depth check does
its full scan instead of its two-`count` shortcut. The tests use the same shapes
(orders_project/tests/test_json_depth.py): the work test counts instructions, this
prints wall-clock microseconds per KB, for a look on the machine at hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from orders_project.api.json_depth import MAX_DEPTH, json_too_deep

DEEP = MAX_DEPTH + 6


def _fill(unit: bytes, size: int, head: bytes, tail: bytes = b"") -> bytes:
    return head + unit * max((size - len(head) - len(tail)) // len(unit), 1) + tail


# name -> body of about `size` bytes whose hostile part follows `depth` opening brackets
SHAPES: dict[str, Callable[[int, int], bytes]] = {
    "unterminated-escaped-quotes": lambda size, depth: _fill(b'\\"', size, b"[" * depth + b'"'),
    "unterminated-backslashes": lambda size, depth: _fill(b"\\", size, b"[" * depth + b'"'),
    "escapes-in-strings": lambda size, depth: _fill(b'"\\\\\\"[\\u005c",', size, b"[" * depth),
    "brackets-in-a-string": lambda size, depth: _fill(b"[{", size, b'{"user_id": "', b'"}'),
    "quotes": lambda size, depth: _fill(b'"', size, b"[" * depth),
    "deep-nesting": lambda size, depth: _fill(b"[", size, b"[" * depth),
    "open-close": lambda size, depth: _fill(b"[]", size, b"[" * depth),
    "long-number": lambda size, depth: _fill(b"1", size, b"[" * depth),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.hostile_json", description=__doc__)
    parser.add_argument("--kb", default="10,1000,2500", help="body sizes in KB, comma-separated")
    sizes = [int(kb) * 1000 for kb in parser.parse_args(argv).kb.split(",")]
    print(f"{'shape':<30}" + "".join(f"{f'{size // 1000} KB':>12}" for size in sizes) + "   (µs per KB)")
    for name, shape in SHAPES.items():
        cells = []
        for size in sizes:
            body = shape(size, DEEP)
            started = time.perf_counter()
            json_too_deep(body)
            cells.append(f"{(time.perf_counter() - started) * 1e6 / (len(body) / 1000):>12.2f}")
        print(f"{name:<30}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
