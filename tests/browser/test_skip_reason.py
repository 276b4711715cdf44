"""Without Debian's Chromium the browser tests skip, saying what is missing and how to get it."""

from pathlib import Path

from tests.support import chromium


def test_a_missing_browser_or_driver_is_named_in_the_skip_reason(monkeypatch, tmp_path: Path):
    # The driver "is there" (any existing file), so the reason names the browser alone,
    # on machines with and without Debian's chromium-driver.
    monkeypatch.setattr(chromium, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(chromium, "CHROMEDRIVER", Path(__file__))

    reason = chromium.missing()

    assert reason.startswith(f"{tmp_path / 'chromium'} not found: install Debian's chromium and chromium-driver")
    assert "apt-get install chromium chromium-driver" in reason


def test_screenshots_go_where_browser_screenshots_says(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("BROWSER_SCREENSHOTS", ".dev/shots")
    relative = chromium.screenshot_dir()
    monkeypatch.setenv("BROWSER_SCREENSHOTS", str(tmp_path))
    absolute = chromium.screenshot_dir()
    monkeypatch.delenv("BROWSER_SCREENSHOTS")

    assert relative == chromium.REPO / ".dev" / "shots"
    assert absolute == tmp_path
    assert chromium.screenshot_dir() is None
