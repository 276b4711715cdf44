"""Reading a process's /metrics in the tests, and the metric names a PromQL expression asks for."""

import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from devstack.procs import LOOPBACK


@dataclass
class Scrape:
    """The samples of one /metrics answer: (name, labels) -> value."""

    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Scrape":
        samples = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]
        return cls(samples)

    @property
    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}

    def value(self, name: str, **labels: str) -> float | None:
        """The sum of the samples named `name` whose labels include `labels`; None if there is none."""
        found = [value for sample, have, value in self.samples if sample == name and labels.items() <= have.items()]
        return sum(found) if found else None


def scrape(port: int) -> Scrape | None:
    """GET /metrics on the port; None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as response:
            return Scrape.parse(response.read().decode())
    except (OSError, urllib.error.URLError):
        return None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset", "group_left", "group_right"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords or labels."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call is None and name not in _KEYWORDS:
            names.add(name)
    return names
