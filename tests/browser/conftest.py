"""Browser tests: Debian's Chromium driven by Selenium against pytest-django's live server.

How Chromium is found and started is in tests/support/chromium.py. Each run gets a
new, empty profile.

Screenshots: a failing test saves one (full page) to $BROWSER_SCREENSHOTS/failures/
or .dev/browser-failures/; with BROWSER_SCREENSHOTS=<dir> set, tests also save the
named pages a reviewer should look at (`screenshot("admin-order-page")`).
"""

import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, REPO, full_page_png, missing, screenshot_dir


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing()
    for item in items:
        if item.get_closest_marker("browser") is None:
            continue
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def driver(django_db_setup: None) -> Iterator[Any]:
    """One Chromium for the session (a start costs about a second); each test clears its cookies.

    It quits before the test database is dropped (hence django_db_setup): the live server's
    request threads hold database sessions while Chromium keeps its connections alive (they end
    when it quits), and dropping the database under them fails the session's teardown."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # Every request the page makes, for the "nothing from another host" checks.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    chrome.implicitly_wait(0)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(driver: Any, live_server: Any, settings: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's Chromium, clean for this test, pointed at the live server."""
    # The live server speaks plain HTTP; production settings mark cookies Secure.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    request.node.browser_driver = driver
    driver.get(f"{live_server.url}/api/v1/health/live")
    driver.delete_all_cookies()
    driver.get_log("performance")  # drop what earlier tests left
    yield driver
    driver.delete_all_cookies()
    driver.get("about:blank")  # no page left that reloads itself or holds a request open


@pytest.fixture
def screenshot(browser: Any) -> Callable[[str], Path | None]:
    """`screenshot("name")` saves name.png under $BROWSER_SCREENSHOTS, when that is set."""

    def save(name: str) -> Path | None:
        folder = screenshot_dir()
        if folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        path.write_bytes(full_page_png(browser))
        return path

    return save


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    chrome = getattr(item, "browser_driver", None)
    if chrome is not None and report.failed and report.when in ("setup", "call"):
        folder = screenshot_dir()
        folder = folder / "failures" if folder is not None else REPO / ".dev" / "browser-failures"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{item.name}.png"
        try:
            path.write_bytes(full_page_png(chrome))
            report.sections.append(("browser", f"screenshot of the failure: {path}\nURL: {chrome.current_url}"))
        except Exception as exc:  # the browser itself may be what failed
            report.sections.append(("browser", f"no screenshot: {exc!r}"))
    return report
