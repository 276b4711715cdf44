"""The multiprocess folder: an exited gunicorn worker's counts are kept in one archive file,
so a scrape says the same before and after, and replaced workers do not pile up files."""

from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from orders_project.metrics import multiprocess_process_exited, multiprocess_registry
from tests.support.scraping import Scrape


def _write(folder: Path, kind: str, pid: int, samples: list[tuple[str, str, dict[str, str], float]]) -> None:
    store = MmapedDict(str(folder / f"{kind}_{pid}.db"))
    for metric, name, labels, value in samples:
        store.write_value(mmap_key(metric, name, list(labels), list(labels.values()), "help"), value, 0.0)
    store.close()


def _worker_files(folder: Path, pid: int, requests: float) -> None:
    """What one gunicorn worker leaves: a labelled counter and a histogram (buckets and sum)."""
    _write(folder, "counter", pid, [("orders_created", "orders_created_total", {}, requests)])
    _write(
        folder,
        "histogram",
        pid,
        [
            ("latency_seconds", "latency_seconds_bucket", {"le": "0.1"}, requests),
            ("latency_seconds", "latency_seconds_bucket", {"le": "+Inf"}, requests),
            ("latency_seconds", "latency_seconds_sum", {}, requests * 0.05),
        ],
    )
    _write(folder, "gauge_livesum", pid, [("busy", "busy", {}, 1.0)])


def _scrape() -> Scrape:
    registry = multiprocess_registry()
    return Scrape([(s.name, dict(s.labels), s.value) for family in registry.collect() for s in family.samples])


def test_an_exited_workers_counts_move_to_the_archive_and_still_add_up(tmp_path, monkeypatch):
    # given three workers' files; two of them exit, one after the other
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for pid, requests in ((101, 3.0), (102, 5.0), (103, 7.0)):
        _worker_files(tmp_path, pid, requests)
    before = _scrape()

    multiprocess_process_exited(101)
    multiprocess_process_exited(102)
    after = _scrape()

    # then counters and histograms say the same, the exited ones' live gauges are gone,
    # and their files are folded into one archive per type
    for name, labels in (
        ("orders_created_total", {}),
        ("latency_seconds_bucket", {"le": "0.1"}),
        ("latency_seconds_count", {}),
        ("latency_seconds_sum", {}),
    ):
        assert after.value(name, **labels) == pytest.approx(before.value(name, **labels)), name
    assert after.value("orders_created_total") == 15.0
    assert after.value("busy") == 1.0 and before.value("busy") == 3.0
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "counter_103.db",
        "counter_archive.db",
        "gauge_livesum_103.db",
        "histogram_103.db",
        "histogram_archive.db",
    ]


@pytest.mark.parametrize("pid", [999])
def test_a_process_that_wrote_nothing_changes_nothing(tmp_path, monkeypatch, pid):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _worker_files(tmp_path, 1, 2.0)

    multiprocess_process_exited(pid)

    assert _scrape().value("orders_created_total") == 2.0
    assert not (tmp_path / "counter_archive.db").exists()
