"""What the Dockerfile's runtime stage gives every container: its ENV and CMD."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

# The Dockerfile's WORKDIR, where the image has manage.py and the packages: the checkout here.
IMAGE_WORKDIR = "/app"


def dockerfile_final_stage(repo: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    lines: list[str] = []
    current = ""
    for raw in (repo / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    instructions = []
    for line in lines:
        name, _, args = line.partition(" ")
        instructions.append((name.upper(), args.strip()))
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from + 1 :]


def image_env_and_cmd(repo: Path) -> tuple[dict[str, str], list[str]]:
    """The runtime stage's ENV (PATH left out: .venv/bin takes /opt/venv/bin's place) and CMD."""
    env: dict[str, str] = {}
    cmd: list[str] = []
    for name, args in dockerfile_final_stage(repo):
        if name == "ENV":
            parts = shlex.split(args)
            if parts and "=" not in parts[0]:  # legacy form: ENV NAME value
                env[parts[0]] = " ".join(parts[1:])
            else:
                for part in parts:
                    key, _, value = part.partition("=")
                    env[key] = value
        elif name == "CMD":
            cmd = json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
    env.pop("PATH", None)
    return env, cmd
