"""The web page in a real browser while a night is replayed through the real pipeline.

Debian's chromium, driven by Selenium through Debian's chromedriver (both installed by
bin/setup). The page is opened before the first declaration; everything it ends up showing
arrives over Server-Sent Events from the worker -> sink -> Redis path.
Screenshots go to test-artifacts/ (git-ignored): dashboard.png, dashboard-mobile.png, seat-mobile.png.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_state, wait_for_declared
from tallyroom.consumers.web.view import night_clock
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import load_night
from tallyroom.streams.change import swing_phrase
from tests.integration.conftest import cli_env
from tests.integration.test_web import WebServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NIGHT = REPO / "data" / "ge2024"
ARTIFACTS = REPO / "test-artifacts"
ELECTION = "ge2024-browser"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INDEPENDENT_GAINS = [
    "Birmingham Perry Barr",
    "Blackburn",
    "Dewsbury and Batley",
    "Islington North",
    "Leicester South",
    "North Down",
]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


@pytest.fixture
def browser():
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: run bin/setup (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="tallyroom-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations show up in the console
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1500",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def dom_summary(driver) -> dict:
    """What the page shows, read from its data attributes."""
    return driver.execute_script("""
        const declared = document.getElementById('declared');
        const seats = {};
        document.querySelectorAll('#bar-rows .bar-row').forEach(r => seats[r.dataset.party] = +r.dataset.seats);
        const items = [...document.querySelectorAll('#feed li.alert')];
        return {
            declared: +declared.dataset.declared, total: +declared.dataset.total, seats,
            streamIds: items.map(li => li.dataset.streamId),
            independentGains: items.filter(li => li.dataset.kind === 'independent_gain')
                                   .map(li => li.querySelector('[data-field=headline]').textContent),
            live: document.getElementById('live').dataset.state,
        };
    """)


def wait_for(driver, condition, timeout: float, what: str):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(dom_summary(d)))
    except TimeoutException:
        raise AssertionError(f"the page never showed {what}; it shows {dom_summary(driver)}") from None


def night_complete(page: dict) -> bool:
    return (
        page["declared"] == page["total"] == 650
        and {p: page["seats"].get(p) for p in ("Lab", "Con", "LD")} == {"Lab": 411, "Con": 121, "LD": 72}
        and all(any(name in headline for headline in page["independentGains"]) for name in INDEPENDENT_GAINS)
    )


def open_the_night(pipeline) -> None:
    """Open the night (as the replay will again, unchanged) and wait for the worker's empty tally in Redis:
    the page of an election is there from its opening, before any result."""
    sender = DeclarationSender(pipeline.settings)
    try:
        sender.open_night(load_night(NIGHT, ELECTION).opened)
        acknowledged, failures = sender.flush()
        assert acknowledged == 1 and not failures, failures
    finally:
        sender.close()
    wait_for_declared(pipeline.redis, ELECTION, 0, 120, version=0)  # the opening's tally: 0 of 650


def test_dashboard_follows_the_night_live(pipeline, browser):
    assert not pipeline.redis.exists(ElectionKeys(ELECTION).tally), f"{ELECTION} must start empty"
    ARTIFACTS.mkdir(exist_ok=True)
    open_the_night(pipeline)
    assert read_state(pipeline.redis, ELECTION).total == 650
    with WebServer(pipeline.settings) as server:
        browser.get(f"{server.url}/e/{ELECTION}")
        wait_for(browser, lambda page: page["live"] == "live", 20, "its live feed connected")
        assert dom_summary(browser)["declared"] == 0 and not dom_summary(browser)["streamIds"]
        assert dom_summary(browser)["total"] == 650  # opened, no result yet

        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tallyroom",
                "replay",
                "--night",
                str(NIGHT),
                "--election",
                ELECTION,
                "--max",
                "--wait",
                "--timeout",
                "240",
            ],
            capture_output=True,
            text=True,
            env=cli_env(pipeline.env),
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        wait_until_caught_up(pipeline.settings)
        wait_for(browser, night_complete, 60, "the final tally and the six independent gains")
        page = dom_summary(browser)

        # Every alert in the stream once, newest first, none twice.
        held = [entry_id for entry_id, _ in pipeline.redis.xrange(ElectionKeys(ELECTION).alerts)]
        assert page["streamIds"] == held[::-1]
        assert page["seats"] == {p: int(n) for p, n in pipeline.redis.hgetall(ElectionKeys(ELECTION).seats).items()}
        assert browser.find_element("id", "majority-line").text == "326"
        as_of = read_state(pipeline.redis, ELECTION).tally.as_of
        assert browser.find_element("id", "clock").text == night_clock(as_of)  # the last seat: Sat 6 Jul
        # The national swing, drawn live by the page's script as the server would word it.
        swing = read_state(pipeline.redis, ELECTION).tally.swing
        assert browser.find_element("id", "swing").text == f"swing {swing_phrase(swing)}"
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

        # A phone: one column, nothing wider than the screen.
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        browser.refresh()
        wait_for(browser, night_complete, 20, "the final state after a reload on a phone")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        browser.save_screenshot(str(ARTIFACTS / "dashboard-mobile.png"))

        # From the feed to the seat.
        link = browser.find_element("css selector", "#feed li[data-kind=independent_gain] a[href*='/seat/']")
        constituency = next(name for name in INDEPENDENT_GAINS if name in link.text)
        link.click()
        WebDriverWait(browser, 10).until(lambda d: "/seat/" in d.current_url)
        assert browser.find_element("css selector", "h1").text == constituency
        assert browser.find_element("id", "verdict").text.startswith("Independent gain from")
        # Turnout in words, and the seat's own alerts from the night just replayed, its independent gain among them.
        turnout = browser.find_element("id", "turnout").text
        assert re.match(r"\d+\.\d%: [\d,]+ valid votes of an electorate of [\d,]+", turnout), turnout
        kinds = [li.get_attribute("data-kind") for li in browser.find_elements("css selector", "#seat-alerts li")]
        assert "independent_gain" in kinds, kinds
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the seat page is {width}px wide on a {PHONE['width']}px phone"
        table = browser.execute_script(
            "const t = document.querySelector('table.candidates'); return [t.scrollWidth, t.clientWidth];"
        )
        assert table[0] <= table[1], f"the candidates' table overflows its box: {table}"
        browser.save_screenshot(str(ARTIFACTS / "seat-mobile.png"))
        refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not refused, refused  # the page's own script, styles and event stream all pass its policy
        browser.get("about:blank")  # close the event stream before the server stops
