"""The scale bench's table (devstack.bench.scale): each figure at the large size beside the small one's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, str, str]  # figure, value, baseline, ratio
Sizes = dict[str, Any]


def _mb(size: float) -> str:
    return f"{size / 2**20:,.1f} MB"


def _ratio(value: float | None, baseline: float | None) -> str:
    return f"{value / baseline * 100:.0f} %" if value is not None and baseline else ""


def _fill(large: Sizes, small: Sizes, s: str) -> list[Row]:
    fill, after = large["fill"], large["fill"]["after_fill"]
    kind = "" if fill["partitioned"] else "not "
    return [
        (
            f"fill {fill['rows']:,} published rows over {fill['days']} days ({kind}partitioned)",
            f"{fill['fill_seconds']} s, {fill['rows_per_second']:,} rows/s",
            f"{s}: {small['fill']['fill_seconds']} s",
            "",
        ),
        (
            "largest size reached: table + indexes (heap + TOAST; indexes)",
            f"{_mb(after['total_bytes'])} ({_mb(after['heap_bytes'])}; {_mb(after['index_bytes'])})",
            f"{s}: {_mb(small['fill']['after_fill']['total_bytes'])}",
            "",
        ),
    ]


def _row_bytes(large: Sizes, small: Sizes, s: str) -> list[Row]:
    big = large["row_bytes"]
    return [
        (
            "bytes per row: table + indexes / rows; one history row; one API order.created row",
            f"{big['total_per_row']}; {big['history_row']}; {big['api_row']}",
            f"{s}: {small['row_bytes']['total_per_row']}",
            "",
        )
    ]


def _relay(key: str, when: str) -> Callable[[Sizes, Sizes, str], list[Row]]:
    def section(large: Sizes, small: Sizes, s: str) -> list[Row]:
        big, little = large[key], small[key]
        return [
            (
                f"relay, 1 process, {when}: events/s",
                f"{big['rate']}",
                f"{s}: {little['rate']}",
                _ratio(big["rate"], little["rate"]),
            ),
            (
                f"relay claim statement, {when}: p50; p95",
                f"{big['claim_ms_p50']} ms; {big['claim_ms_p95']} ms",
                f"{s}: {little['claim_ms_p50']} ms; {little['claim_ms_p95']} ms",
                _ratio(big["claim_ms_p50"], little["claim_ms_p50"]),
            ),
        ]

    return section


def _api(large: Sizes, small: Sizes, s: str) -> list[Row]:
    big, little = large["api_create"]["c16"], small["api_create"]["c16"]
    return [
        ("API create c16: req/s", f"{big['rps']:.0f}", f"{s}: {little['rps']:.0f}", _ratio(big["rps"], little["rps"])),
        (
            "API create c16: p99",
            f"{big['p99_ms']:.0f} ms",
            f"{s}: {little['p99_ms']:.0f} ms",
            _ratio(big["p99_ms"], little["p99_ms"]),
        ),
        (
            "API create c16: web CPU per create",
            f"{big['web_cpu_ms']:.1f} ms",
            f"{s}: {little['web_cpu_ms']:.1f} ms",
            _ratio(big["web_cpu_ms"], little["web_cpu_ms"]),
        ),
    ]


def _retention(key: str) -> Callable[[Sizes, Sizes, str], list[Row]]:
    def section(large: Sizes, small: Sizes, s: str) -> list[Row]:
        big, little = large[key], small[key]
        versus = _ratio(big["wal_bytes"], large["baseline"]["wal_bytes"]) if key == "retention" else ""
        return [
            (
                f"{key}: {big['kind']}, one day ({big['day_rows']:,} rows): seconds; WAL; rows DELETEd",
                f"{big['seconds']} s; {_mb(big['wal_bytes'])}; {big['rows_deleted']:,}",
                f"{s}: {little['seconds']} s; {_mb(little['wal_bytes'])}",
                f"WAL {versus} of the baseline's" if versus else "",
            ),
            (
                f"{key}: table + indexes before -> after; dead tuples before -> after; the day's rows left",
                f"{_mb(big['before']['total_bytes'])} -> {_mb(big['after']['total_bytes'])}; "
                f"{big['before']['dead_tuples']:,} -> {big['after']['dead_tuples']:,}; {big['day_rows_left']:,}",
                f"{s}: {_mb(little['before']['total_bytes'])} -> {_mb(little['after']['total_bytes'])}",
                "",
            ),
            (
                f"{key}: the VACUUM after it: seconds; WAL",
                f"{big['vacuum_after']['seconds']} s; {_mb(big['vacuum_after']['wal_bytes'])}",
                f"{s}: {little['vacuum_after']['seconds']} s; {_mb(little['vacuum_after']['wal_bytes'])}",
                "",
            ),
        ]

    return section


SECTIONS: list[tuple[str, Callable[[Sizes, Sizes, str], list[Row]]]] = [
    ("fill", _fill),
    ("bytes per row", _row_bytes),
    ("relay right after the fill", _relay("relay_burst", "right after the fill")),
    ("relay after VACUUM ANALYZE", _relay("relay_vacuumed", "after VACUUM ANALYZE")),
    ("API create", _api),
    ("retention", _retention("retention")),
    ("baseline", _retention("baseline")),
]


def rows(results: dict[str, Any]) -> list[Row]:
    """A section whose figures are missing (its measurement failed: the JSON has the error) says so."""
    large, small = results.get("large", {}), results.get("small", {})
    s = f"{small['fill']['rows']:,}" if "fill" in small else "small"
    table: list[Row] = []
    for name, section in SECTIONS:
        try:
            table += section(large, small, s)
        except (KeyError, TypeError):
            table.append((name, "missing (see the JSON for the error)", "", ""))
    return table
