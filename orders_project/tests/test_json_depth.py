"""The JSON depth check does work linear in the body's size, for every hostile shape.

Nothing is timed: the work is the number of CPU instructions that one call of
`json_too_deep` executes, counted by Valgrind's callgrind (deterministic, unlike a
clock on a shared machine). The module runs alone in `python -S -I`, and collection
is switched on only inside `operator.call` (through which the script makes each
call) and dumped after each one, so every figure is one call and nothing else.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.hostile_json import DEEP, SHAPES
from orders_project.api import json_depth

SMALL, LARGE = 10_000, 1_000_000

# A child interpreter under Valgrind.
pytestmark = pytest.mark.processes
# Linear work grows 100x from SMALL to LARGE; quadratic work grows 10,000x.
MOST_GROWTH = 1.5 * LARGE / SMALL

_SCRIPT = """
import importlib.util, operator, sys
spec = importlib.util.spec_from_file_location("json_depth", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
bodies = [open(path, "rb").read() for path in sys.argv[2:]]
for body in bodies:
    operator.call(module.json_too_deep, body)
"""


def _instructions_per_call(bodies: list[bytes], folder: Path) -> list[int]:
    paths = []
    for number, body in enumerate(bodies):
        paths.append(folder / f"body{number}")
        paths[-1].write_bytes(body)
    (folder / "script.py").write_text(_SCRIPT)
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=_operator_call",
            "--dump-after=_operator_call",
            f"--callgrind-out-file={folder}/callgrind.out",
            sys.executable,
            "-S",
            "-I",
            str(folder / "script.py"),
            json_depth.__file__,
            *map(str, paths),
        ],
        check=True,
        capture_output=True,
        # Only so that a superlinear check cannot hang the suite; the assertions count instructions.
        timeout=600,
    )
    dumps = sorted(folder.glob("callgrind.out.*"), key=lambda path: int(path.suffix[1:]))
    totals = [next(line for line in dump.read_text().splitlines() if line.startswith("totals:")) for dump in dumps]
    return [int(line.split()[1]) for line in totals]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (Debian package valgrind)")
def test_json_depth_work_grows_linearly_for_every_hostile_shape(tmp_path):
    names = list(SHAPES)
    # a warm-up call first, so that no figure includes a first call's one-off costs
    bodies = [b"[]", *(SHAPES[name](SMALL, DEEP) for name in names), *(SHAPES[name](LARGE, DEEP) for name in names)]

    counts = _instructions_per_call(bodies, tmp_path)

    assert len(counts) == len(bodies)
    small, large = counts[1 : 1 + len(names)], counts[1 + len(names) :]
    growth = {name: round(big / little, 1) for name, little, big in zip(names, small, large, strict=True)}
    assert all(little > 10_000 for little in small), dict(zip(names, small, strict=True))  # each did a full scan
    assert {name: factor for name, factor in growth.items() if factor > MOST_GROWTH} == {}, growth
