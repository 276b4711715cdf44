"""Run a command as a pod runs the image: as the chart's runAsUser/runAsGroup, with a
read-only file system except the process's own /tmp folder (deploy-smoke's sandbox).

Needs root and util-linux's `unshare` and `setpriv`. `unshare --mount` gives the
command a private copy of the mount table; a shell there, still root, binds the
process's folder writable over itself and over /tmp (so /tmp is the pod's emptyDir,
under either name; the folder must not be below /tmp), remounts / read-only, and hides /root
behind an empty read-only tmpfs (binding back the Python install when it lives
there, as pyenv's does: the image user could not enter /root). A checkout below
/tmp (CI clones into `mktemp -d`) would vanish under the new /tmp: it is bound
back at its own path inside it, read-only like the rest. Then `setpriv`
drops to the uid and gid with no supplementary groups, no capabilities and
no_new_privs, and execs the command. Nothing changes outside the namespace.

So a process that writes outside its /tmp (its working directory, HOME, the
venv, /var/tmp, the host's /tmp) gets EROFS or EACCES here, as it would in the
pod with `readOnlyRootFilesystem: true`, `runAsUser: 10001`. What stays
writable: the process's folder, and /dev/shm (a pod has a writable one too).

    sandbox = Sandbox.for_container(container_spec, pod_spec, writable=tmp, stage=scratch / "sandbox-stage")
    subprocess.run(sandbox.wrap(["python", "-c", "..."]))
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where a sandboxed run keeps its folders: not /tmp, which the sandbox replaces.
SCRATCH_PARENT = Path("/var/tmp")
# The shell that prepares the namespace: $1 a scratch mount point, $2 the writable
# folder, $3 the Python install to keep reachable ("" when it is not under /root),
# $4 uid, $5 gid, $6 a folder with the passwd and group files to use, $7 a second
# scratch mount point, $8 the checkout to keep reachable ("" when it is not under /tmp),
# then the command.
# The binds of $2 come before the read-only remount of /: a bind mount copies the flags
# of the mount it comes from.
_SETUP = r"""
set -eu
stage=$1 writable=$2 python_home=$3 uid=$4 gid=$5 etc=$6 checkout_stage=$7 checkout=$8
shift 8
mount --bind "$etc/passwd" /etc/passwd
mount --bind "$etc/group" /etc/group
if [ -n "$python_home" ]; then mount --bind "$python_home" "$stage"; fi
mount -t tmpfs -o mode=0755,size=64k deploy-smoke-hidden /root
if [ -n "$python_home" ]; then mkdir -p "$python_home" && mount --move "$stage" "$python_home"; fi
mount -o remount,ro,bind /root
mount --bind "$writable" "$writable"
if [ -n "$checkout" ]; then mount --bind "$checkout" "$checkout_stage"; fi
mount --bind "$writable" /tmp
if [ -n "$checkout" ]; then mkdir -p "$checkout" && mount --move "$checkout_stage" "$checkout"; fi
mount -o remount,ro,bind /
if [ -n "$checkout" ]; then mount -o remount,ro,bind "$checkout"; fi
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
"""
HIDDEN = Path("/root")
REPLACED = Path("/tmp")
REPO = Path(__file__).resolve().parents[1]
# The Dockerfile's user and group name (useradd/groupadd app).
IMAGE_USER = "app"


def available() -> str | None:
    """None when this process can sandbox commands, else why not."""
    if os.geteuid() != 0:
        return "not root (the sandbox needs a mount namespace and a uid change)"
    missing = [tool for tool in ("unshare", "setpriv", "mount") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found"
    return None


def _python_home() -> str:
    """The Python install the venv's interpreter runs from, if the image user could not reach it."""
    home = Path(os.path.realpath(sys.base_prefix))
    return str(home) if home.is_relative_to(HIDDEN) else ""


def _checkout() -> str:
    """The checkout, if it lies below the /tmp the sandbox replaces (a CI clone in `mktemp -d`)."""
    return str(REPO) if REPO.is_relative_to(REPLACED) else ""


@dataclass(frozen=True)
class Sandbox:
    uid: int
    gid: int
    writable: Path  # the process's /tmp folder
    stage: Path  # an empty folder, a mount point inside the namespace only

    def __post_init__(self) -> None:
        if self.writable.is_relative_to(REPLACED):
            raise ValueError(f"{self.writable}: the sandbox mounts it over /tmp, so it cannot be below /tmp")

    @classmethod
    def for_container(cls, container: dict[str, Any], pod: dict[str, Any], *, writable: Path, stage: Path) -> Sandbox:
        """The user and group the pod would run the container as (container securityContext over the pod's)."""
        context = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
        if "runAsUser" not in context:
            raise ValueError(f"container {container.get('name')}: no runAsUser to run it as")
        return cls(int(context["runAsUser"]), int(context.get("runAsGroup", context["runAsUser"])), writable, stage)

    @property
    def etc(self) -> Path:
        return self.stage.parent / f"{self.stage.name}-etc"

    @property
    def checkout_stage(self) -> Path:
        return self.stage.parent / f"{self.stage.name}-checkout"

    def prepare(self) -> None:
        """Make the folders the user must reach: its own (owned by it), and every parent traversable;
        and passwd/group files that know the user, as the image's do (Celery takes an unknown
        group for root and warns)."""
        self.stage.mkdir(parents=True, exist_ok=True)
        self.checkout_stage.mkdir(exist_ok=True)
        self.etc.mkdir(exist_ok=True)
        files = {
            "passwd": (self.uid, f"{IMAGE_USER}:x:{self.uid}:{self.gid}::/nonexistent:/usr/sbin/nologin"),
            "group": (self.gid, f"{IMAGE_USER}:x:{self.gid}:"),
        }
        for name, (number, entry) in files.items():
            # The host's entries, but none other with the image user's number.
            kept = [
                line for line in Path("/etc", name).read_text().splitlines() if line.split(":")[2:3] != [str(number)]
            ]
            (self.etc / name).write_text("\n".join([*kept, entry]) + "\n")
        self.writable.mkdir(parents=True, exist_ok=True)
        os.chown(self.writable, self.uid, self.gid)
        for parent in [*self.writable.parents, *self.stage.parents]:
            mode = parent.stat().st_mode
            if parent.owner() == "root" and not mode & 0o001 and not parent.is_relative_to(HIDDEN):
                parent.chmod(mode | 0o055)  # a mkdtemp folder is 0700

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line that runs argv inside the sandbox (argv[0] is looked up on PATH as usual)."""
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            _SETUP,
            "deploy-smoke-sandbox",
            str(self.stage),
            str(self.writable),
            _python_home(),
            str(self.uid),
            str(self.gid),
            str(self.etc),
            str(self.checkout_stage),
            _checkout(),
            *argv,
        ]
