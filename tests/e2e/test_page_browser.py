"""The try-it page at ``GET /`` in headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

Nothing downloads a browser: the test uses /usr/bin/chromium and /usr/bin/chromedriver and skips
with a reason when they are absent. It types a text, submits, and reads the top label, which must be
the API's; then it sends what the API refuses and reads the API's message on the page.
"""

from __future__ import annotations

import shutil

import httpx
import pytest

from t5cls.server import create_app
from tests.test_server import ThreadServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), reason="Debian's chromium and chromium-driver are not installed"
)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _results(driver, wait) -> list[tuple[str, float]]:
    from selenium.webdriver.common.by import By

    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .result") or d.find_element(By.ID, "error").is_displayed())
    rows = driver.find_elements(By.CSS_SELECTOR, "#results .result")
    return [(row.find_element(By.CLASS_NAME, "label").text, float(row.find_element(By.CLASS_NAME, "score").text)) for row in rows]


def test_page_classifies_and_shows_refusals(browser, tiny_nli_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    text = "The striker scored twice as the home team won the cup final."
    wait = WebDriverWait(browser, 60)
    with ThreadServer(create_app(tiny_nli_dir, max_chars=200)) as running:
        api = httpx.post(f"{running.url}/v1/classify", json={"inputs": [text]}).json()["results"][0]
        browser.get(running.url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        tasks = [option.text for option in Select(browser.find_element(By.ID, "task")).options]
        assert tasks == ["Classify", "Zero-shot"]

        browser.find_element(By.ID, "text").send_keys(text)
        browser.find_element(By.ID, "submit").click()
        shown = _results(browser, wait)
        assert shown[0][0] == api[0]["label"]
        assert [label for label, _ in shown] == [entry["label"] for entry in api]
        assert abs(shown[0][1] - api[0]["score"]) < 1e-4  # the page shows 4 decimals

        Select(browser.find_element(By.ID, "task")).select_by_visible_text("Zero-shot")
        labels = browser.find_element(By.ID, "labels")
        assert labels.is_displayed()
        labels.send_keys("sports, politics")
        browser.find_element(By.ID, "submit").click()
        zero_shot = httpx.post(f"{running.url}/v1/zero-shot", json={"inputs": [text], "candidate_labels": ["sports", "politics"]}).json()
        assert _results(browser, wait)[0][0] == zero_shot["results"][0]["labels"][0]

        # What the API refuses (a text over max_chars) shows the API's own message.
        browser.find_element(By.ID, "text").send_keys(" more" * 40)
        browser.find_element(By.ID, "submit").click()
        error = browser.find_element(By.ID, "error")
        wait.until(lambda d: error.is_displayed())
        assert error.text.startswith("413: inputs[0] has") and "max_chars" in error.text
        assert not browser.find_elements(By.CSS_SELECTOR, "#results .result")


def test_page_reranks_with_the_query_box(browser, tiny_t5_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    query = "who won the cup final?"
    documents = ["The home team won the cup final.", "Stocks fell on Tuesday.", "A new comet was found."]
    wait = WebDriverWait(browser, 60)
    with ThreadServer(create_app(tiny_t5_dir)) as running:
        api = httpx.post(f"{running.url}/rerank", json={"query": query, "texts": documents, "return_text": True}, timeout=60).json()
        browser.get(running.url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        task = Select(browser.find_element(By.ID, "task"))
        assert [option.text for option in task.options] == ["Label probabilities", "Rerank"]
        task.select_by_visible_text("Rerank")
        assert browser.find_element(By.ID, "query").is_displayed() and not browser.find_element(By.ID, "labels").is_displayed()
        browser.find_element(By.ID, "query").send_keys(query)
        browser.find_element(By.ID, "text").send_keys("\n".join(documents))
        browser.find_element(By.ID, "submit").click()
        shown = _results(browser, wait)
        assert [label for label, _ in shown] == [r["text"] for r in api]
        assert abs(shown[0][1] - api[0]["score"]) < 1e-4
