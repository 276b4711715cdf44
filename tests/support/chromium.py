"""Debian's Chromium for the browser tests: where it is, how it starts, whether it can,
and what it saw (screenshots, the hosts a page called).

Selenium is told where the browser and its driver are, so Selenium Manager never
downloads one (and SE_AVOID_STATS keeps it from sending usage statistics). As root
Chromium needs --no-sandbox; the background-networking flags stop it calling Google
from a machine whose network is closed. Nothing here imports selenium: `missing()`
is asked before it is known to be installed.
"""

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def missing() -> str:
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


def screenshot_dir() -> Path | None:
    given = os.environ.get("BROWSER_SCREENSHOTS", "").strip()
    if not given:
        return None
    path = Path(given)
    return path if path.is_absolute() else REPO / path


def full_page_png(driver: Any) -> bytes:
    """A PNG of the whole page, not just the window (Chrome DevTools)."""
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
