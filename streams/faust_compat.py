"""Every reach into faust-streaming's and aiokafka's private parts, in one place.

Checked against faust-streaming 0.15.3 and aiokafka 0.14.0 (pinned in pyproject), and the
mode-streaming (0.7.1) faust-streaming brings.
``check()`` fails loudly, naming the attribute, when an upgrade removes one of the
private names used here; ``tests/unit/test_faust_compat.py`` calls it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import faust
import faust.streams as faust_streams
from aiokafka import TopicPartition
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.serializers import codecs as faust_codecs
from faust.transport.drivers import aiokafka as faust_aiokafka

from tallyroom.lifecycle import kafka_transient, retrying_async

CHECKED_WITH = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

# (object, attribute): the private names this module relies on.
_PRIVATE_NAMES: list[tuple[object, str]] = [
    (faust_streams, "_current_event"),
    (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"),
    (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer"),
    (GroupCoordinator, "_maybe_leave_group"),
    (faust_aiokafka.Transport, "_create_topic"),
    (faust.Table, "apply_changelog_batch"),
    (faust.Table, "data"),
]
_FETCH_WAIT_ATTRIBUTE = "_tallyroom_fetch_max_wait_ms"
_START_DEADLINE_ATTRIBUTE = "_tallyroom_start_deadline"


def check() -> None:
    """Raise if a private name this module uses is gone (a faust-streaming upgrade)."""
    for owner, name in _PRIVATE_NAMES:
        if not hasattr(owner, name):
            raise RuntimeError(
                f"faust compat: {getattr(owner, '__name__', owner)}.{name} is gone; tallyroom.streams.faust_compat "
                f"was checked with {CHECKED_WITH} only"
            )


def shorten_fetch_wait(app: faust.App, max_wait_ms: int) -> None:
    """Make ``app``'s consumer park a fetch at the broker for ``max_wait_ms``, not 1.5 s.

    faust-streaming hard-codes ``fetch_max_wait_ms=1500``, and aiokafka keeps one fetch
    in flight per broker. A fetch sent while the declarations partition still had
    records buffered covers only the other partitions (changelogs, the assignor's
    topic), which are quiet, so it sits at the broker for the whole 1.5 s while new
    declarations wait behind it. Measured on the 2024 night: stalls of 1.0 s at the
    start and mid-stream, and events handed to the agent at ~800/s.

    The class's factory method is wrapped once per process; it reads the wait from the
    app it builds a consumer for, so other apps in the process keep Faust's own.
    """
    setattr(app, _FETCH_WAIT_ATTRIBUTE, max_wait_ms)
    thread = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread, "_tallyroom_wrapped", False):
        return
    original = thread._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        wait = getattr(self.app, _FETCH_WAIT_ATTRIBUTE, None)
        if wait is not None:
            consumer._fetch_max_wait_ms = wait  # read by the Fetcher that start() creates
        return consumer

    thread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
    thread._tallyroom_wrapped = True  # type: ignore[attr-defined]


def retry_topic_creation(app: faust.App, deadline: float) -> None:
    """Make ``app`` retry a topic declaration that fails on a transient Kafka error, until ``deadline``
    (a ``time.monotonic()``); after it, or on any other error, the error is raised as before.

    At start-up Faust declares the changelogs (faust-streaming 0.15.3,
    ``Transport._really_create_topic``), sending a MetadataRequest to the first broker its
    producer's metadata lists and then CreateTopics to the ``controller_id`` the answer names.
    A KRaft broker names any broker it thinks alive, and one just killed stays "alive" until its
    session lapses (9 s): aiokafka then raises ``NodeNotReadyError``, Faust's worker crashes and
    exits 1 (seen in the cluster fault tests). Asked again, after aiokafka's own metadata refresh,
    another broker is named, or the dead one is no longer listed.

    Wrapped once per process, like ``shorten_fetch_wait``; each app carries its own deadline.
    """
    setattr(app, _START_DEADLINE_ATTRIBUTE, deadline)
    transport = faust_aiokafka.Transport
    if getattr(transport, "_tallyroom_wrapped", False):
        return
    original = transport._create_topic

    async def create_topic(self: Any, owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any) -> None:
        until = getattr(self.app, _START_DEADLINE_ATTRIBUTE, None)
        if until is None or time.monotonic() >= until:
            return await original(self, owner, client, topic, *args, **kwargs)  # type: ignore[no-any-return]
        return await retrying_async(  # type: ignore[no-any-return]
            lambda: original(self, owner, client, topic, *args, **kwargs),
            what=f"Kafka (declaring topic {topic})",
            transient=kafka_transient,
            deadline=until,
            level=logging.INFO,
        )

    transport._create_topic = create_topic  # type: ignore[method-assign]
    transport._tallyroom_wrapped = True  # type: ignore[attr-defined]


def exited_on(exited: SystemExit) -> BaseException | None:
    """The error a Faust worker exited on (at start-up or later), or None if it exited cleanly.

    mode's ``Worker.execute_from_commandline`` logs the error with its traceback and exits 1
    from inside its handler (mode-streaming 0.7.1, ``mode.worker.exiting``), so the error is the
    ``SystemExit``'s context; the command can still report a refused login or an unreachable
    cluster in one line and with its own exit status.
    """
    if not exited.code:
        return None
    return exited.__context__


@contextmanager
def current_event(event: faust.types.EventT) -> Iterator[None]:
    """Make ``event`` the one a table write belongs to.

    Tables write their changelog to the partition of the current event, which
    Faust keeps in a context variable; inside a batch it must be the event the
    write came from. Only the context variable is set: ``Stream.current_event``
    is shared with the task that fills ``take_events``' buffer, and changing it
    there loses events (seen here: 3 of 650 declarations vanished).
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def table_data(table: faust.Table) -> MutableMapping[Any, Any]:
    """The table's local store, written directly once its changelog record is acknowledged."""
    return table.data  # type: ignore[no-any-return]


def changelog_key(key: str) -> bytes:
    """A table key as Faust's json key serializer writes it to the changelog."""
    return faust_codecs.dumps("json", key)  # type: ignore[no-any-return]


async def send(app: faust.App, topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> Awaitable:
    """Hand one record to the app's producer; the returned future resolves when the broker acknowledges it.

    Straight to the producer: ``Topic.send`` wraps each record in Faust's
    FutureMessage/callback machinery, a third of the worker's CPU in a profile.
    """
    return await app.producer.send(topic, key, value, partition, None, None)  # type: ignore[no-any-return]


def _consumer_thread(app: faust.App) -> Any:
    """The ``AIOKafkaConsumerThread`` that runs ``app``'s aiokafka consumer in a loop of its own."""
    return app.consumer._thread  # type: ignore[attr-defined]


async def resume_offset(app: faust.App, topic: str, partition: int) -> int:
    """Where ``app``'s consumer group resumes ``topic``/``partition``: its committed offset, or the
    partition's first offset if the group has committed none (``auto_offset_reset`` is earliest).

    Asked of the broker through the aiokafka consumer that Faust runs in a thread of its own
    (``AIOKafkaConsumerThread``): Faust's own ``_committed_offset`` is filled by the very seek
    whose race ``streams.app.Positions`` guards against.
    """
    tp = TopicPartition(topic, partition)
    thread = _consumer_thread(app)
    consumer = thread._ensure_consumer()
    committed = await thread.call_thread(consumer.committed, tp)
    if committed is not None and committed >= 0:
        return int(committed)
    first = await thread.call_thread(consumer.beginning_offsets, [tp])
    return int(first[tp])


def streaming_partitions(app: faust.App, topic: str) -> list[int]:
    """The partitions of ``topic`` assigned to ``app`` that Faust streams now: those it has not
    paused while their tables recover (``Consumer._paused_partitions``, an instance attribute)."""
    consumer = app.consumer
    paused = consumer._paused_partitions  # type: ignore[attr-defined]
    return sorted(tp.partition for tp in consumer.assignment() if tp.topic == topic and tp not in paused)


async def end_offsets(app: faust.App, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """The offset after the last record of each of ``partitions`` of ``topic``, asked of the broker
    in one request through ``app``'s aiokafka consumer (as ``resume_offset`` asks for the committed one)."""
    tps = [TopicPartition(topic, partition) for partition in partitions]
    if not tps:
        return {}
    thread = _consumer_thread(app)
    consumer = thread._ensure_consumer()
    ends = await thread.call_thread(consumer.end_offsets, tps)
    return {tp.partition: int(ends[tp]) for tp in tps}


def wrap_message_callback(app: faust.App, wrap: Callable[[Any], Any]) -> None:
    """Put ``wrap(callback)`` in place of the callback Faust's consumer hands each fetched record
    to (read once, when its fetcher starts: call this before the worker runs). Test faults only."""
    consumer = app.consumer
    consumer.callback = wrap(consumer.callback)  # type: ignore[attr-defined]


async def leave_group(app: faust.App, timeout: float) -> None:
    """Tell the broker ``app``'s consumer leaves its group, committing nothing, within ``timeout`` seconds.

    A worker that exits with ``exit_now`` after a fault would otherwise stay a member until its
    session lapses, and its replacement waits for that before it is given the partitions: 6 s of
    the 8 s between a worker's exit and its replacement's first batch in the flush fault test.
    What has been acknowledged (whole batches only: a fault is raised inside the agent, where
    ``take_events`` has not acknowledged the batch) may be committed by Faust meanwhile, which
    is safe. Best effort: a broker that does not answer only costs the timeout.
    """
    thread = _consumer_thread(app)
    coordinator = thread._ensure_consumer()._coordinator
    await asyncio.wait_for(thread.call_thread(coordinator._maybe_leave_group), timeout)


Origin = tuple[str, int, int]  # topic, partition, offset


class OriginTable(faust.Table):
    """A table that remembers which changelog record each key was recovered from.

    A stored record the running code cannot read is quarantined with its topic,
    partition and offset (see ``tallyroom.streams.app``); Faust keeps only values.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins: dict[Any, Origin] = {}

    def apply_changelog_batch(self, batch: Iterable[faust.types.EventT]) -> None:
        events = list(batch)
        for event in events:
            message = event.message
            self.origins[self._to_key(event.key)] = (message.topic, message.partition, message.offset)
        super().apply_changelog_batch(events)


def origin_table(app: faust.App, name: str, **kwargs: Any) -> OriginTable:
    """``app.Table(name, ...)``, as an ``OriginTable``."""
    table = OriginTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    return app.tables.add(table)  # type: ignore[return-value]


def exit_now(code: int) -> None:
    """End the process at once, running no clean-up, so that nothing is committed.

    Faust acknowledges a ``take_events`` batch in the generator's ``finally``, and
    commits what is acknowledged on shutdown: an exception or a stop that unwinds
    through it marks a batch consumed that was never counted (faust-streaming 0.15.3,
    ``Stream.take_events``). Exiting without unwinding leaves the batch uncommitted,
    so the next worker counts it again, and a revision already held is ignored.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001  (a closed stream must not stop the exit)
            pass
    os._exit(code)
