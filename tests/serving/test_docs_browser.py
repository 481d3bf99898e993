"""The interactive docs in a real headless browser, on a network that reaches nothing but the
service: Swagger UI must load from the service itself and render every operation.

Needs Debian's Chromium and its driver (``apt-get install -y chromium chromium-driver``) and
selenium (the ``test`` extra). Without the browser the test is skipped on a developer's machine
and fails under CI (``CI`` set), so CI never passes by silently skipping it.
``BASKETRY_DOCS_SCREENSHOT=/some/file.png`` keeps a screenshot of the rendered page.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.serving.conftest import write_version
from tests.serving.test_server import start

INSTALL = "apt-get install -y chromium chromium-driver"
OPERATIONS = [
    ("POST", "/v1/recommendations"), ("POST", "/v1/recommendations/batch"),
    ("GET", "/v1/items/{item}/associations"), ("GET", "/v1/model"), ("GET", "/healthz"),
    ("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/v1/admin/reload"),
]


def _browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = "chromium" if chromium is None else "chromedriver"
        message = f"{missing} is not installed; Debian: `{INSTALL}`"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must install it)", pytrace=False)
        pytest.skip(message)
    return chromium, driver


def test_docs_render_offline_in_a_real_browser(tmp_path: Path) -> None:
    chromium, driver_path = _browser()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (test extra) missing")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = tmp_path / "model"
    write_version(model, "v1")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1400",
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                # a closed network: every host name but the loopback address fails to resolve
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    for running in start(tmp_path, model, access_log=False):
        browser = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            browser.set_page_load_timeout(60)
            browser.get(f"{running.url}/docs")
            WebDriverWait(browser, 60).until(
                lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(OPERATIONS))
            shown = set()
            for block in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary"):
                method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
                path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text
                shown.add((method.strip(), path.replace("\u200b", "").strip()))
            assert set(OPERATIONS) <= shown, shown
            # the title and description come from the OpenAPI document; no error box
            assert "basketry recommendations" in browser.find_element(
                By.CSS_SELECTOR, ".info .title").text
            assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")
            # every resource the page loaded came from the service
            loaded = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)")
            assert loaded and all(url.startswith(running.url) for url in loaded), loaded
            assert any(url.endswith("/swagger-ui-bundle.js") for url in loaded), loaded
            screenshot = os.environ.get("BASKETRY_DOCS_SCREENSHOT")
            if screenshot:
                assert browser.save_screenshot(screenshot)
        finally:
            browser.quit()
