"""The private faust-streaming names the worker relies on are still there, and what it does with them."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import faust
import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, SaslAuthenticationFailed
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.worker import exiting as mode_exiting

from tallyroom.lifecycle import UNREACHABLE_EXIT_STATUS, AuthenticationFailed, one_line_failure
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


# ------------------------------------------------------------------ Faust's start-up on a cluster electing


class _Declarations:
    """Faust's ``Transport._create_topic`` as a broker down would answer it: ``errors`` first, then created."""

    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.calls: list[str] = []

    async def __call__(self, transport, owner, client, topic, *args, **kwargs):
        self.calls.append(topic)
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture
def declarations(monkeypatch):
    """The transport's topic creation replaced by a ``_Declarations``, wrapped afresh; put back after."""

    def install(*errors: BaseException) -> _Declarations:
        fake = _Declarations(*errors)
        monkeypatch.setattr(faust_aiokafka.Transport, "_create_topic", fake, raising=True)
        monkeypatch.setattr(faust_aiokafka.Transport, "_tallyroom_wrapped", False, raising=False)
        return fake

    return install


def declare(app, topic: str = "t-__assignor-__leader"):
    transport = SimpleNamespace(app=app)
    return asyncio.run(faust_aiokafka.Transport._create_topic(transport, None, None, topic, 1, 3))


def test_a_topic_declaration_refused_by_a_dead_broker_is_tried_again_until_it_succeeds(declarations):
    fake = declarations(NodeNotReadyError("node 1 not ready"), KafkaConnectionError("refused"))
    app = SimpleNamespace()
    faust_compat.retry_topic_creation(app, time.monotonic() + 30)
    declare(app)
    assert fake.calls == ["t-__assignor-__leader"] * 3


def test_a_declaration_still_refused_at_the_deadline_raises_the_last_error(declarations):
    declarations(*[NodeNotReadyError("node 1 not ready")] * 1000)
    app = SimpleNamespace()
    started = time.monotonic()
    faust_compat.retry_topic_creation(app, started + 0.7)
    with pytest.raises(NodeNotReadyError):
        declare(app)
    assert 0.7 <= time.monotonic() - started < 1.5


@pytest.mark.parametrize("error", [SaslAuthenticationFailed("bad"), RuntimeError("Invalid controller: 1")])
def test_a_refused_login_or_another_error_is_not_retried(declarations, error):
    fake = declarations(error, error)
    app = SimpleNamespace()
    faust_compat.retry_topic_creation(app, time.monotonic() + 30)
    with pytest.raises(AuthenticationFailed if isinstance(error, SaslAuthenticationFailed) else RuntimeError):
        declare(app)
    assert len(fake.calls) == 1


def test_after_the_start_up_deadline_or_for_another_app_a_declaration_is_tried_once(declarations):
    fake = declarations(NodeNotReadyError("a"), NodeNotReadyError("b"))
    started_long_ago, other = SimpleNamespace(), SimpleNamespace()
    faust_compat.retry_topic_creation(started_long_ago, time.monotonic() - 1)
    with pytest.raises(NodeNotReadyError):
        declare(started_long_ago)
    with pytest.raises(NodeNotReadyError):
        declare(other)  # never given a deadline: Faust's own behaviour
    assert len(fake.calls) == 2


def test_the_error_a_faust_worker_exits_on_is_found_for_its_one_line_failure():
    error = NodeNotReadyError("Attempt to send a request to node which is not ready (node id 1).")
    with pytest.raises(SystemExit) as exited:
        with mode_exiting():  # what Worker.execute_from_commandline runs in
            raise error
    assert exited.value.code == 1 and faust_compat.exited_on(exited.value) is error
    failure = one_line_failure(error, Settings(_env_file=None, kafka_bootstrap="127.0.0.1:29192"))
    assert failure is not None and failure.exit_status == UNREACHABLE_EXIT_STATUS

    with pytest.raises(SystemExit) as clean:
        with mode_exiting():
            pass
    assert clean.value.code == 0 and faust_compat.exited_on(clean.value) is None
