"""The private faust-streaming names the worker relies on are still there."""

from __future__ import annotations

import faust
import pytest

from tallyroom.settings import Settings
from tallyroom.streams import faust_compat
from tallyroom.streams.app import build_worker


def test_every_private_name_is_still_there():
    faust_compat.check()  # raises, naming the attribute, after an upgrade that removed one


def test_check_names_a_missing_private_name(monkeypatch):
    class Gone:
        pass

    monkeypatch.setattr(faust_compat, "_PRIVATE_NAMES", [(Gone, "_vanished")])
    with pytest.raises(RuntimeError, match=r"Gone\._vanished is gone"):
        faust_compat.check()


def test_the_fetch_wait_belongs_to_the_app_it_was_set_on():
    ours = build_worker(Settings(worker_id="compat-test", fetch_max_wait_ms=20)).app
    other = faust.App("compat-other")
    assert getattr(ours, "_tallyroom_fetch_max_wait_ms") == 20
    assert not hasattr(other, "_tallyroom_fetch_max_wait_ms")  # another app keeps Faust's own


def test_the_worker_is_built_on_call_with_its_settings():
    worker = build_worker(Settings(worker_id="built-on-call", topic_declarations="some.declarations"))
    assert worker.app.conf.id == "built-on-call"
    assert worker.declarations.get_topic_name() == "some.declarations"
    assert isinstance(worker.seats_table, faust_compat.OriginTable)
    assert worker.tallier.tables.seats_changelog == "built-on-call-seats-changelog"


def test_the_changelogs_created_ahead_are_the_ones_faust_uses():
    from tallyroom.streams.app import changelog_topics

    settings = Settings(worker_id="ahead")
    worker = build_worker(settings)
    names = {worker.seats_table.changelog_topic.get_topic_name(), worker.nights_table.changelog_topic.get_topic_name()}
    assert names == set(changelog_topics(settings))
