"""Driving Debian's Chromium (packages ``chromium`` and ``chromium-driver``; no browser
download) through Selenium, for the console's browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, service_missing
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
# Set to refresh the screenshots checked in under docs/console/ (scripts/console-shots).
SCREENSHOTS_ENV = "SHIPYARD_CONSOLE_SCREENSHOTS"


def chrome(width: int = 1280, height: int = 900) -> Any:
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        service_missing("chromium and chromedriver (Debian: chromium, chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument("--no-first-run")
    return webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = chrome()
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str, tmp_path: Path) -> Path:
    """Saved under docs/console/ when SHIPYARD_CONSOLE_SCREENSHOTS is set, else tmp_path."""
    folder = REPO / "docs" / "console" if os.environ.get(SCREENSHOTS_ENV) else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"
    return path


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def sign_in(driver: Any, server: LiveServer, keys: tuple[str, str] | None = None) -> None:
    key_id, secret = keys or (server.access_key_id, server.secret_access_key)
    driver.get(server.url + "/console")
    assert driver.current_url.endswith("/console/login")
    by_id(driver, "access_key_id").send_keys(key_id)
    by_id(driver, "secret").send_keys(secret)
    by_id(driver, "sign-in").click()
    wait_until(lambda: driver.current_url.endswith("/console"), "the overview after sign-in", 10)


def sign_out(driver: Any) -> None:
    """Sign out and wait for the sign-in page: the click returns before the
    form's POST lands, and a page asked for sooner still carries the session."""
    by_id(driver, "sign-out").click()
    wait_until(lambda: driver.current_url.endswith("/console/login"), "the sign-in page", 10)


def text_of(driver: Any, element_id: str) -> str:
    return str(by_id(driver, element_id).text)


def press(driver: Any, button_id: str) -> None:
    """Click an action button and accept its confirmation."""
    by_id(driver, button_id).click()
    alert = driver.switch_to.alert
    alert.accept()
