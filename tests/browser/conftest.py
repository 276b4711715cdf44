"""Browser tests: Debian's Chromium driven by Selenium against pytest-django's live server.

Selenium is told where the browser and its driver are, so Selenium Manager never
downloads one (and SE_AVOID_STATS keeps it from sending usage statistics). As root
Chromium needs --no-sandbox; the background-networking flags stop it calling Google
from a machine whose network is closed. Each run gets a new, empty profile.

Screenshots: a failing test saves one (full page) to $BROWSER_SCREENSHOTS/failures/
or .dev/browser-failures/; with BROWSER_SCREENSHOTS=<dir> set, tests also save the
named pages a reviewer should look at (`screenshot("admin-order-page")`).
"""

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1366, 900)
WAIT_SECONDS = 10
REPO = Path(__file__).resolve().parents[2]
# Before selenium is imported anywhere: Selenium Manager reads it.
os.environ.setdefault("SE_AVOID_STATS", "true")

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # as root (CI here) Chromium refuses to start without it
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # No calls home: without these Chromium tries Google's hosts at every start.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]


def _missing() -> str:
    absent = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if absent:
        return (
            f"{' and '.join(absent)} not found: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does) to run the browser tests"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements/dev.txt)"
    return ""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium through Selenium (make test-browser)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    for item in items:
        if item.get_closest_marker("browser") is None:
            continue
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def screenshot_dir() -> Path | None:
    given = os.environ.get("BROWSER_SCREENSHOTS", "").strip()
    if not given:
        return None
    path = Path(given)
    return path if path.is_absolute() else REPO / path


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    """One Chromium for the session (a start costs about a second); each test clears its cookies."""
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


def full_page_png(driver: Any) -> bytes:
    """A PNG of the whole page, not just the window (Chrome DevTools)."""
    import base64

    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WINDOW[0], "height": max(int(height), WINDOW[1]), "scale": 1},
        },
    )
    return base64.b64decode(shot["data"])


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


def requested_hosts(driver: Any) -> set[str]:
    """Hosts (host:port) the browser sent a request to since the last call.

    A request the page's Content-Security-Policy blocked never leaves the browser:
    Chrome logs it (requestWillBeSent, then loadingFailed with blockedReason "csp")
    and it is not counted."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            url = urlsplit(params["request"]["url"])
            if url.scheme in ("http", "https", "ws", "wss"):
                sent[params["requestId"]] = url.netloc
        elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return {host for request_id, host in sent.items() if request_id not in blocked}
