"""The web process parses each alert's JSON once, and keeps only the newest it has read."""

from __future__ import annotations

from tallyroom.consumers.web.store import ParsedAlerts, feed_item
from tallyroom.schemas import Alert, AlertKind
from tallyroom.schemas.common import read_stored
from tests.factories import alert


def raw(n: int) -> str:
    return alert(n, AlertKind.GAIN, f"gain {n}").model_dump_json()


def test_an_alert_read_again_is_not_validated_again_and_equals_a_fresh_parse():
    parsed = ParsedAlerts(size=10)
    first = feed_item(("1-0", {"json": raw(1)}), parsed)
    again = feed_item(("1-0", {"json": raw(1)}), parsed)
    assert parsed.parsed == 1 and again.alert is first.alert
    assert first.alert == read_stored(Alert, raw(1))  # as without the cache
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


def test_the_seat_pages_index_reuses_the_feeds_parse():
    from tallyroom.consumers.web.seat_alerts import ElectionIndex

    parsed = ParsedAlerts(size=10)
    seat_alert = alert(1, AlertKind.GAIN, "gain 1").model_copy(update={"ons_id": "E14000001"}).model_dump_json()
    fed = feed_item(("1-0", {"json": seat_alert}), parsed)
    index = ElectionIndex()
    index.take([("1-0", {"json": seat_alert, "ons_id": "E14000001"})], parsed)
    assert parsed.parsed == 1
    assert next(iter(index.by_seat["E14000001"].values())).alert is fed.alert
