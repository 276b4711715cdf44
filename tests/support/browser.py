"""Small helpers the browser tests share: log in, wait, read a page as a person would."""

from typing import Any

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.chromium import WAIT_SECONDS

PASSWORD = "a-long-browser-test-password"


def wait(driver: Any, condition: Any, seconds: float = WAIT_SECONDS) -> Any:
    """Until `condition` holds. An element found while the page is being replaced (a form's
    POST loading its answer) goes stale before it is read: that is "not yet", as a missing one is."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, seconds, ignored_exceptions=ignored).until(condition)


def element(driver: Any, css: str) -> WebElement:
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def texts(driver: Any, css: str) -> list[str]:
    return [found.text for found in driver.find_elements(By.CSS_SELECTOR, css)]


def log_in(driver: Any, base_url: str, username: str, *, path: str = "/admin/login/") -> None:
    """Fill the login form (the admin's, or the browsable API's at /api-auth/login/)."""
    driver.get(f"{base_url}{path}")
    element(driver, "#id_username").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "#id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait(driver, lambda d: "login" not in d.current_url)


def admin_messages(driver: Any) -> list[str]:
    return texts(driver, "ul.messagelist li")


def run_action(driver: Any, action: str, row_values: list[str]) -> None:
    """On an admin changelist: tick the rows, pick the action, press Go."""
    for value in row_values:
        driver.find_element(By.CSS_SELECTOR, f"input.action-select[value='{value}']").click()
    select = driver.find_element(By.CSS_SELECTOR, "select[name=action]")
    select.find_element(By.CSS_SELECTOR, f"option[value='{action}']").click()
    driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    element(driver, "ul.messagelist")
