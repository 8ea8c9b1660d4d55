"""The web page in a real browser while a night is replayed through the real pipeline.

Debian's chromium, driven by Selenium through Debian's chromedriver (both installed by
bin/setup). The page is opened before the first declaration; everything it ends up showing
arrives over Server-Sent Events from the worker -> sink -> Redis path.
One replay for the module: the page is watched at desktop size (1400x1000) while the night
streams, then on a phone (390x844). Screenshots go to ``$TALLYROOM_SCREENSHOTS``, by default
test-artifacts/screenshots/ (git-ignored): desktop-mid-night.png, desktop.png, desktop-search.png,
phone.png, phone-tap.png, seat-phone.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_state, wait_for_declared
from tallyroom.consumers.web.view import UNDECLARED_COLOUR, night_clock
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import load_night
from tallyroom.schemas import SeatSummary
from tallyroom.schemas.parties import party_name
from tallyroom.streams.change import swing_phrase
from tests.integration.conftest import cli_env
from tests.integration.test_web import WebServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NIGHT = REPO / "data" / "ge2024"
ARTIFACTS = Path(os.environ.get("TALLYROOM_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
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
DESKTOP = {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
REPLAY_SECONDS = 40  # the night at a pace the page can be seen to follow (at --max it is over in seconds)
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
        "--window-size=1400,1000",
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
    return driver.execute_script(
        """
        const declared = document.getElementById('declared');
        const seats = {};
        document.querySelectorAll('#bar-rows .bar-row').forEach(r => seats[r.dataset.party] = +r.dataset.seats);
        const items = [...document.querySelectorAll('#feed li.alert')];
        const hexes = [...document.querySelectorAll('#hexmap [data-seat]')];
        return {
            declared: +declared.dataset.declared, total: +declared.dataset.total, seats,
            streamIds: items.map(li => li.dataset.streamId),
            independentGains: items.filter(li => li.dataset.kind === 'independent_gain')
                                   .map(li => li.querySelector('[data-field=headline]').textContent),
            live: document.getElementById('live').dataset.state,
            hexes: hexes.length,
            coloured: hexes.filter(a => a.firstElementChild.getAttribute('fill') !== arguments[0]).length,
            outlined: hexes.filter(a => a.classList.contains('gain')).map(a => a.dataset.seat).sort(),
            banner: document.getElementById('banner').classList.contains('hidden')
                ? null : document.getElementById('banner-text').textContent,
            toCome: +document.getElementById('to-come').textContent,
            listed: document.querySelectorAll('#seat-list li').length,
        };
        """,
        UNDECLARED_COLOUR,
    )


def wait_for(driver, condition, timeout: float, what: str):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(dom_summary(d)))
    except TimeoutException:
        raise AssertionError(f"the page never showed {what}; it shows {brief(dom_summary(driver))}") from None


def brief(page: dict) -> dict:
    return {k: (len(v) if isinstance(v, list) else v) for k, v in page.items()}


def night_complete(page: dict) -> bool:
    return (
        page["declared"] == page["total"] == 650
        and page["coloured"] == 650
        and {p: page["seats"].get(p) for p in ("Lab", "Con", "LD")} == {"Lab": 411, "Con": 121, "LD": 72}
        and all(any(name in headline for headline in page["independentGains"]) for name in INDEPENDENT_GAINS)
    )


def map_progress(driver) -> tuple[int, int]:
    """(hexagons drawn, hexagons coloured): cheap enough to ask several times a second."""
    hexes, coloured = driver.execute_script(
        "const all = document.querySelectorAll('#hexmap polygon');"
        "return [all.length, [...all].filter(p => p.getAttribute('fill') !== arguments[0]).length];",
        UNDECLARED_COLOUR,
    )
    return hexes, coloured


def screenshot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / name))


def replay(pipeline) -> subprocess.Popen:
    command = [sys.executable, "-m", "tallyroom", "replay", "--night", str(NIGHT), "--election", ELECTION]
    return subprocess.Popen(
        [*command, "--duration", str(REPLAY_SECONDS), "--wait", "--timeout", "240"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(pipeline.env),
    )


def open_the_night(pipeline) -> None:
    """Open the night (as the replay will again, unchanged) and wait for the worker's empty tally in Redis:
    the page of an election is there from its opening, before any result (an unknown election is 404)."""
    sender = DeclarationSender(pipeline.settings)
    try:
        sender.open_night(load_night(NIGHT, ELECTION).opened)
        acknowledged, failures = sender.flush()
        assert acknowledged == 1 and not failures, failures
    finally:
        sender.close()
    wait_for_declared(pipeline.redis, ELECTION, 0, 120, version=0)  # the opening's tally: 0 of 650


def test_the_page_follows_the_night_live_on_a_desktop_and_a_phone(pipeline, browser):
    assert not pipeline.redis.exists(ElectionKeys(ELECTION).tally), f"{ELECTION} must start empty"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    open_the_night(pipeline)
    assert read_state(pipeline.redis, ELECTION).total == 650
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)
    with WebServer(pipeline.settings) as server:
        browser.get(f"{server.url}/e/{ELECTION}")
        wait_for(browser, lambda page: page["live"] == "live", 20, "its live feed connected")
        assert dom_summary(browser)["declared"] == 0 and not dom_summary(browser)["streamIds"]
        assert map_progress(browser) == (650, 0), "the opened night's map, all grey"

        # The night replays while the page watches: its map is coloured seat by seat.
        started = time.monotonic()
        running = replay(pipeline)
        seen: list[tuple[float, int, int]] = []  # (seconds since the replay started, hexagons, coloured)
        try:
            while time.monotonic() - started < REPLAY_SECONDS + 90:
                hexes, coloured = map_progress(browser)
                seen.append((round(time.monotonic() - started, 1), hexes, coloured))
                if 150 < coloured < 500 and not any(150 < c < 500 for _, _, c in seen[:-1]):
                    screenshot(browser, "desktop-mid-night.png")
                if coloured == 650:
                    break
                time.sleep(0.3)
            out, _ = running.communicate(timeout=300)
        finally:
            if running.poll() is None:
                running.kill()
        assert running.returncode == 0, out
        (ARTIFACTS / "map-progress.txt").write_text("".join(f"{t}s {h} hexagons, {c} coloured\n" for t, h, c in seen))
        drawn = [c for _, h, c in seen if h == 650]
        assert len({c for c in drawn if 0 < c < 650}) >= 2, f"the map never showed the night part-way: {seen}"
        assert drawn == sorted(drawn), f"a declared seat went grey again: {seen}"

        wait_until_caught_up(pipeline.settings)
        wait_for(browser, night_complete, 60, "the final tally, every seat coloured and the six independent gains")
        page = dom_summary(browser)

        # Every alert in the stream once, newest first, none twice.
        held = [entry_id for entry_id, _ in pipeline.redis.xrange(ElectionKeys(ELECTION).alerts)]
        assert page["streamIds"] == held[::-1]
        assert page["seats"] == {p: int(n) for p, n in pipeline.redis.hgetall(ElectionKeys(ELECTION).seats).items()}
        # The map agrees with the winners hash: each gain outlined, no hold.
        winners = {
            k: SeatSummary.model_validate_json(v)
            for k, v in pipeline.redis.hgetall(ElectionKeys(ELECTION).winners).items()
        }
        assert page["outlined"] == sorted(k for k, w in winners.items() if w.gain)
        fills = browser.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('#hexmap [data-seat]')]"
            ".map(a => [a.dataset.seat, a.firstElementChild.getAttribute('fill')]))"
        )
        parties = browser.execute_script(
            "return JSON.parse(document.getElementById('dashboard-config').textContent).parties"
        )
        assert all(fills[k] == parties.get(w.party, {}).get("colour", "#9e9e9e") for k, w in winners.items())
        assert page["banner"] == "Labour wins a majority: 326 seats, 326 needed"
        assert page["toCome"] == 0 and page["listed"] == 650 and page["live"] == "live"
        assert browser.find_element("id", "majority-line").text == "326"
        as_of = read_state(pipeline.redis, ELECTION).tally.as_of
        assert browser.find_element("id", "clock").text == night_clock(as_of)  # the last seat: Sat 6 Jul
        # The national swing, drawn live by the page's script as the server would word it.
        swing = read_state(pipeline.redis, ELECTION).tally.swing
        assert browser.find_element("id", "swing").text == f"swing {swing_phrase(swing, party_name)}"
        # Full party names where a person reads them.
        names = [e.text for e in browser.find_elements("css selector", "#bar-rows .party")]
        assert names[:3] == ["Labour", "Conservative", "Liberal Democrats"]
        # Hovering a hexagon tells its result.
        islington = browser.find_element("css selector", "#hexmap [data-seat='E14001305'] polygon")
        ActionChains(browser).move_to_element(islington).perform()
        tip = browser.find_element("id", "hex-tip")
        WebDriverWait(browser, 5).until(lambda d: tip.is_displayed())
        assert "Islington North" in tip.text and "Independent gain from Labour, majority 7,247" in tip.text
        screenshot(browser, "desktop.png")

        # Search as you type, then filter and sort.
        search = browser.find_element("id", "seat-search")
        search.send_keys("islington")
        rows = [e.text for e in browser.find_elements("css selector", "#seat-list li .seat-name")]
        assert rows == ["Islington North", "Islington South and Finsbury"]
        screenshot(browser, "desktop-search.png")
        search.clear()
        search.send_keys("YNYS MÔN")  # typed with an accent and capitals the data does not have
        assert [e.text for e in browser.find_elements("css selector", "#seat-list li .seat-name")] == ["Ynys Mon"]
        search.clear()
        browser.execute_script("document.getElementById('seat-search').dispatchEvent(new Event('input'))")
        select(browser, "seat-filter", "gain")
        assert dom_summary(browser)["listed"] == sum(w.gain for w in winners.values())
        select(browser, "seat-filter", "marginal")
        select(browser, "seat-sort", "majority")
        majorities = [w.majority for w in winners.values() if w.marginal]
        first = browser.find_element("css selector", "#seat-list li").get_attribute("data-seat")
        assert winners[first].majority == min(majorities)

        # A phone: one column, nothing wider than the screen, the map still every seat.
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        browser.refresh()
        wait_for(browser, night_complete, 20, "the final state after a reload on a phone")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        assert dom_summary(browser)["banner"] == page["banner"]
        screenshot(browser, "phone.png")
        # A tap shows the result first; the seat opens from there.
        browser.execute_script(
            "document.querySelector(\"#hexmap [data-seat='E14001305']\").scrollIntoView({block: 'center'})"
        )
        browser.execute_script(
            "const hex = document.querySelector(\"#hexmap [data-seat='E14001305']\");"
            "const box = hex.getBoundingClientRect();"
            "hex.dispatchEvent(new PointerEvent('click', {bubbles: true, cancelable: true, pointerType: 'touch',"
            " clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));"
        )
        tip = browser.find_element("id", "hex-tip")
        assert tip.is_displayed() and "Islington North" in tip.text and "/seat/" not in browser.current_url
        screenshot(browser, "phone-tap.png")

        # From the feed to the seat.
        browser.find_element("id", "feed").location_once_scrolled_into_view
        link = browser.find_element("css selector", "#feed li[data-kind=independent_gain] a[href*='/seat/']")
        constituency = next(name for name in INDEPENDENT_GAINS if name in link.text)
        browser.execute_script("arguments[0].click()", link)
        WebDriverWait(browser, 10).until(lambda d: "/seat/" in d.current_url)
        assert browser.find_element("css selector", "h1").text == constituency
        assert browser.find_element("id", "verdict").text.startswith("Independent gain from")
        screenshot(browser, "seat-phone.png")
        refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not refused, refused  # the page's own script, styles and event stream all pass its policy
        browser.get("about:blank")  # close the event stream before the server stops


def select(driver, element_id: str, value: str) -> None:
    driver.execute_script(
        "const el = document.getElementById(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('change'));",
        element_id,
        value,
    )
