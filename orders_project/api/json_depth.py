"""How deeply a JSON body nests, in time linear in its size by construction.

The check runs on every body before `json.loads`, and a body may be 2.5 MB of
anything, so it uses no regular expression and no Python loop over the bytes:
only a fixed number of passes of bytes methods (`count`, `replace`, `split`,
`join`, `translate`) and one C-level `accumulate`, each linear in its input.
(A regex for "a JSON string" such as `"[^"\\\\]*(?:\\\\.[^"\\\\]*)*"` is not: on an
unterminated string of escaped quotes, `re.sub` retries from every quote and
rescans to the end, quadratic work that holds the GIL, ~30 s for 64 KB.)

Brackets inside strings do not count. A string's end is the first quote not
escaped, and a quote is escaped when an odd run of backslashes precedes it: so
the backslash pairs are dropped first (each run of k backslashes leaves k mod 2),
then the escaped quotes, and what remains splits on quotes into outside/inside
pieces. Malformed JSON gives some number; `json.loads` refuses it afterwards.

No dependencies, so the work test can run it alone under an instruction counter.
"""

from array import array
from itertools import accumulate

MAX_DEPTH = 64

# Opening brackets -> +1, closing -> -1 (as signed bytes), everything else deleted.
_DEPTH_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def json_too_deep(body: bytes) -> bool:
    """Whether arrays and objects in `body` nest deeper than MAX_DEPTH.

    A body with no more opening brackets than MAX_DEPTH cannot be, so the usual
    request costs two `count`s. The running depth stops at the first level too deep.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    # bytes.replace scans left to right without overlap: a run of k backslashes keeps k mod 2.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    steps = array("b", outside_strings.translate(_DEPTH_STEP, _NOT_BRACKETS))
    return next(filter(MAX_DEPTH.__lt__, accumulate(steps)), None) is not None
