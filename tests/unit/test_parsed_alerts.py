"""The web process parses each alert's JSON once, and keeps only the newest it has read."""

from __future__ import annotations

from tallyroom.consumers.web.store import ParsedAlerts, feed_item
from tallyroom.schemas import AlertKind
from tests.factories import alert


def raw(n: int) -> str:
    return alert(n, AlertKind.GAIN, f"gain {n}").model_dump_json()


def test_an_alert_read_again_is_not_validated_again_and_equals_a_fresh_parse():
    parsed = ParsedAlerts(size=10)
    first = feed_item(("1-0", {"json": raw(1)}), parsed)
    again = feed_item(("1-0", {"json": raw(1)}), parsed)
    assert parsed.parsed == 1 and again.alert is first.alert
    assert first.alert == feed_item(("1-0", {"json": raw(1)})).alert  # as without the cache
    assert feed_item(("2-0", {"json": raw(2)}), parsed).alert.headline == "gain 2" and parsed.parsed == 2


def test_only_the_newest_alerts_are_kept():
    parsed = ParsedAlerts(size=2)
    for n in (1, 2, 3):
        parsed.alert(raw(n))
    parsed.alert(raw(3))
    parsed.alert(raw(2))
    assert parsed.parsed == 3
    parsed.alert(raw(1))  # dropped when the third came in: parsed again
    assert parsed.parsed == 4
