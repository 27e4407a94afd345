"""Headless Chromium for the pages the project writes (the plan report, the benchmarks page):
load a page offline and count the Plotly figures that drew, with the page's errors and requests."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver"
)
RENDERED_FIGURES = (
    "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".filter(d => d.querySelector('.main-svg') && d._fullLayout).length"
)
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def assert_renders_offline(page: Path, expected_figures: int) -> None:
    """Every figure of ``page`` drawn, no severe console error, no request beyond the file itself."""
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.resolve().as_uri())
        # Plotly draws after the load event, and later still on a busy machine (0 of 7 was once seen
        # beside another job): wait for the condition asserted, up to a generous bound, never a fixed sleep.
        with contextlib.suppress(TimeoutException):  # the assertion below then reports how many rendered
            WebDriverWait(driver, timeout=60, poll_frequency=0.2).until(
                lambda d: d.execute_script(RENDERED_FIGURES) == expected_figures
            )
        assert driver.execute_script(RENDERED_FIGURES) == expected_figures
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        requested = [
            json.loads(e["message"])["message"]["params"]["request"]["url"]
            for e in driver.get_log("performance")
            if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        assert requested and all(url.startswith(("file://", "data:", "blob:", "about:")) for url in requested), (
            requested
        )
    finally:
        driver.quit()
