"""Headless Chromium through selenium, for the dashboard tests and the screenshot script.

Debian's `chromium` and `chromium-driver` (.ci/run installs them). The flags keep Chromium from
calling home: on a closed network its background connections are refused and it misbehaves without
them. Both logs are on: `browser` (console messages, CSP violations) and `performance` (DevTools
network events, from which `requested_urls` lists every request a page made).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from selenium import webdriver
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "chromium",
    "console_entries",
    "requested_urls",
    "requests_sent",
    "wait_for",
]

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Chrome]:
    """A fresh headless Chromium (own profile directory) with console and network logging; quit after."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"install Debian's chromium and chromium-driver (see .ci/run): missing {missing}"
    profile = tempfile.mkdtemp(prefix="govtrack-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _log(driver: Chrome, kind: str) -> list[dict[str, Any]]:
    """One of the driver's logs, drained by reading it (selenium leaves `get_log` unannotated)."""
    entries: list[dict[str, Any]] = driver.get_log(kind)  # type: ignore[no-untyped-call]
    return entries


def console_entries(driver: Chrome, level: str = "SEVERE") -> list[str]:
    """Console messages at `level` since the last call (the log is drained by reading it)."""
    return [str(e["message"]) for e in _log(driver, "browser") if e["level"] == level]


def requests_sent(driver: Chrome) -> list[dict[str, Any]]:
    """Every request the pages made since the last call, in order.

    DevTools `Network.requestWillBeSent`'s `request` objects: `url`, `method`, `headers`.
    """
    sent: list[dict[str, Any]] = []
    for entry in _log(driver, "performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            sent.append(message["params"]["request"])
    return sent


def requested_urls(driver: Chrome) -> list[str]:
    """Every URL the pages requested since the last call."""
    return [str(r["url"]) for r in requests_sent(driver)]


def wait_for(driver: Chrome, script: str, timeout_s: float = 30.0) -> Any:
    """Poll the JavaScript expression `script` (its `return` value) until it is truthy; return it."""
    return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(lambda d: d.execute_script(script))
