"""The operator console in a real browser: sign in, enter Islington North's result by hand,
and see the independent gain on the public page.

Debian's chromium through Selenium, as tests/e2e/test_browser.py drives it; the entry server and
the public page run under real uvicorns, the worker and sink are the session's real pipeline.
Screenshot: test-artifacts/console-mobile.png.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

import httpx
import pytest
import uvicorn
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tallyroom.producers.http import create_entry_app
from tallyroom.producers.live import NightSeats
from tallyroom.producers.nights import load_night
from tallyroom.producers.operators import OperatorStore, Role
from tests.e2e import test_browser as chromium
from tests.e2e.test_browser import ARTIFACTS, NIGHT, PHONE, dom_summary, wait_for
from tests.integration.test_web import WebServer

pytestmark = pytest.mark.e2e
browser = chromium.browser  # the same Debian chromium, driven the same way


class EntryServer:
    """The entry server (``create_entry_app``) under a real uvicorn, in a thread, on a free port."""

    def __init__(self, app):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> EntryServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the entry server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def test_an_operator_enters_islington_north_and_the_public_page_shows_the_independent_gain(pipeline, browser, tmp_path):
    election = f"ge2024-console-{uuid.uuid4().hex[:6]}"
    night = load_night(NIGHT, election)
    seat = next(d for d in night.declarations if d.constituency == "Islington North")
    store = OperatorStore(tmp_path / "operators.json")
    admin, operator = store.add("ada", Role.ADMIN), store.add("olu")
    settings = pipeline.settings.model_copy(update={"operators_file": store.path})
    app = create_entry_app(settings, seats=NightSeats.of(night.opened))
    ARTIFACTS.mkdir(exist_ok=True)

    with EntryServer(app) as entry, WebServer(pipeline.settings) as web:
        # The admin opens the night, nominations and all, through the entry server.
        opened = httpx.post(
            f"{entry.url}/declarations",
            content=night.opened.model_dump_json(),
            headers={"authorization": f"Bearer {admin}", "content-type": "application/json"},
            timeout=60,
        )
        assert opened.status_code == 202, opened.text

        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)  # at the count, on a phone
        browser.get(f"{entry.url}/console")
        browser.find_element(By.ID, "token").send_keys(operator)
        browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
        search = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "seat-search"))
        assert browser.find_element(By.ID, "operator").text == "olu"

        search.send_keys("islington n")
        WebDriverWait(browser, 10).until(
            lambda d: [b.text for b in d.find_elements(By.CSS_SELECTOR, "#seat-matches button")] == ["Islington North"]
        )
        browser.find_element(By.CSS_SELECTOR, "#seat-matches button").click()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "seat-name").text == "Islington North")
        rows = browser.find_elements(By.CSS_SELECTOR, "#nominees tbody tr[data-name]")
        assert {r.get_attribute("data-name") for r in rows} == {c.name for c in seat.candidates}

        votes = {c.name: c.votes for c in seat.candidates}
        for row in rows[:-1]:
            row.find_element(By.CSS_SELECTOR, "input.votes").send_keys(str(votes[row.get_attribute("data-name")]))
        # One left blank: the console says so and will not send.
        assert "no votes typed for" in browser.find_element(By.ID, "warnings").text
        assert not browser.find_element(By.ID, "send-result").is_enabled()
        rows[-1].find_element(By.CSS_SELECTOR, "input.votes").send_keys(str(votes[rows[-1].get_attribute("data-name")]))
        browser.find_element(By.ID, "electorate").send_keys(str(seat.electorate))
        assert browser.find_element(By.ID, "warnings").text == ""
        assert browser.find_element(By.ID, "preview-winner").text == "Jeremy Corbyn (Ind) · Ind GAIN from Lab"
        first, second = sorted(votes.values(), reverse=True)[:2]
        assert browser.find_element(By.ID, "preview-majority").text == f"{first - second:,}"
        browser.find_element(By.ID, "send-result").click()

        WebDriverWait(browser, 20).until(
            lambda d: "sent and acknowledged" in d.find_element(By.ID, "sent").text, "the broker's ack on the page"
        )
        # What the worker raised from it, on the console itself...
        WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#seat-alerts li[data-kind=independent_gain]"),
            "the independent gain on the console",
        )
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the console is {width}px wide on a {PHONE['width']}px phone"
        browser.save_screenshot(str(ARTIFACTS / "console-mobile.png"))

        # ...and on the public page.
        browser.get(f"{web.url}/e/{election}")
        wait_for(
            browser,
            lambda page: any("Corbyn" in headline for headline in page["independentGains"]),
            30,
            "Islington North's independent gain",
        )
        assert dom_summary(browser)["declared"] == 1
        browser.get("about:blank")  # close the event stream before the server stops
