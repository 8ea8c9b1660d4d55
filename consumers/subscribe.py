"""Subscribing to an election's alerts through a Redis Streams consumer group.

The alerts stream (``tallyroom:E:alerts``) is durable; a consumer group keeps, per
subscriber, what it has been handed and what it has acknowledged. So:

- A group is created at the START of the stream (id ``0``): a new group gets the
  night from its first alert, not only what comes after it joined.
- An alert is written out (one JSON line, flushed) BEFORE it is acknowledged. A
  subscriber that dies in between is handed the alert again: at-least-once; the
  alert ``id`` lets a reader drop the rare repeat.
- On start, a subscriber first re-reads its own pending entries (``XREADGROUP ... 0``),
  then claims entries that another consumer of the group has held unacknowledged for
  longer than ``claim_idle_ms`` (``XAUTOCLAIM``: a consumer name that never came back).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import redis

from tallyroom.consumers.keys import ElectionKeys, read_entries
from tallyroom.lifecycle import Stop, retrying
from tallyroom.schemas import AlertKind

log = logging.getLogger("tallyroom.subscribe")

BATCH = 100
KNOWN_KINDS = frozenset(kind.value for kind in AlertKind)


def parse_kinds(text: str | None, option: str = "--kinds") -> frozenset[str] | None:
    """``"gain,independent_gain"`` -> that set; None (or empty) means every kind."""
    if not text or not text.strip():
        return None
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(kinds - KNOWN_KINDS)
    if unknown:
        raise ValueError(
            f"{option}: unknown alert kind {', '.join(map(repr, unknown))}; "
            f"known kinds: {', '.join(sorted(KNOWN_KINDS))}"
        )
    return kinds


def default_consumer_name() -> str:
    # Stable across restarts on one machine, so a subscriber that comes back finds its pending entries.
    return socket.gethostname() or "subscriber"


def ensure_group(client: redis.Redis, stream: str, group: str) -> bool:
    """Create ``group`` at the start of ``stream`` (creating the stream if need be); False if it existed."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
        return True
    except redis.ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise


def wanted(fields: dict[str, str], kinds: frozenset[str] | None) -> bool:
    """Whether a stream entry is an alert this subscriber prints."""
    return bool(fields.get("json")) and (kinds is None or fields.get("kind") in kinds)


@dataclass
class SubscribeCounts:
    printed: int = 0
    skipped: int = 0  # filtered out by kind (or not an alert): acknowledged unprinted
    redelivered: int = 0  # pending entries handed out again on start (own or claimed)
    claimed: int = 0


@dataclass
class Subscriber:
    client: redis.Redis
    election: str
    group: str
    consumer: str
    kinds: frozenset[str] | None = None
    out: TextIO = sys.stdout
    claim_idle_ms: int | None = 60_000
    block_ms: int = 1000
    crash_after: int | None = None  # debug: die after writing the Nth line, before its XACK
    counts: SubscribeCounts = field(default_factory=SubscribeCounts)
    stop: Stop = field(default_factory=Stop)

    @property
    def stream(self) -> str:
        return ElectionKeys(self.election).alerts

    def run(self, limit: int | None = None) -> SubscribeCounts:
        """Print alerts until ``limit`` have been printed, or ``stop`` is set."""
        self._limit = limit
        retrying(lambda: ensure_group(self.client, self.stream, self.group), self.stop)
        self._claim_abandoned()
        self._deliver_pending()
        last_claim = time.monotonic()
        while not self._done():
            entries = self._read(">", block=self.block_ms)
            self._handle_all(entries)
            if self.claim_idle_ms is not None and time.monotonic() - last_claim > self.claim_idle_ms / 1000:
                self._claim_abandoned()
                self._deliver_pending()
                last_claim = time.monotonic()
        return self.counts

    # --- reading -------------------------------------------------------------------------------

    def _deliver_pending(self) -> None:
        """Entries handed to this consumer name but never acknowledged: before anything new."""
        after = "0"
        while not self._done():
            entries = self._read(after)
            if not entries:
                return
            self.counts.redelivered += len(entries)
            self._handle_all(entries)
            after = entries[-1][0]

    def _claim_abandoned(self) -> None:
        """Take over entries another consumer of the group read and never acknowledged."""
        idle_ms = self.claim_idle_ms
        if idle_ms is None:
            return
        start = "0-0"
        while True:
            reply = retrying(
                lambda: self.client.xautoclaim(
                    self.stream, self.group, self.consumer, idle_ms, start_id=start, count=BATCH
                ),
                self.stop,
            )
            # Claimed entries join this consumer's pending list; _deliver_pending hands them out.
            start, claimed = reply[0], reply[1]
            self.counts.claimed += len(claimed)
            if start in ("0-0", b"0-0"):
                return

    def _read(self, after: str, block: int | None = None) -> list[tuple[str, dict[str, str]]]:
        reply = retrying(
            lambda: self.client.xreadgroup(
                self.group, self.consumer, {self.stream: after}, count=self._batch_size(), block=block
            ),
            self.stop,
        )
        return read_entries(reply)

    def _batch_size(self) -> int:
        # Never take more than can still be printed: what is read is pending for this consumer.
        if self._limit is None:
            return BATCH
        return max(1, min(BATCH, self._limit - self.counts.printed))

    # --- handling ------------------------------------------------------------------------------

    def _handle_all(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        for stream_id, fields in entries:
            if self._done():
                return  # the rest stay pending for this consumer: handed out again next start
            self._handle(stream_id, fields or {})

    def _handle(self, stream_id: str, fields: dict[str, str]) -> None:
        if wanted(fields, self.kinds):
            self.out.write(fields["json"] + "\n")
            self.out.flush()
            self.counts.printed += 1
            if self.crash_after is not None and self.counts.printed >= self.crash_after:
                os._exit(9)
        else:
            # Filtered out, or trimmed from the stream (empty fields): nothing to print.
            self.counts.skipped += 1
        retrying(lambda: self.client.xack(self.stream, self.group, stream_id), self.stop)

    def _done(self) -> bool:
        return self.stop.is_set() or (self._limit is not None and self.counts.printed >= self._limit)


def subscribe(
    client: redis.Redis,
    election: str,
    group: str,
    consumer: str,
    kinds: frozenset[str] | None,
    limit: int | None = None,
    claim_idle_ms: int | None = 60_000,
    crash_after: int | None = None,
    out: TextIO = sys.stdout,
) -> SubscribeCounts:
    """Run a subscriber until ``limit`` alerts are printed or SIGTERM/SIGINT."""
    subscriber = Subscriber(
        client, election, group, consumer, kinds, out=out, claim_idle_ms=claim_idle_ms, crash_after=crash_after
    )
    with subscriber.stop.on_signals():
        return subscriber.run(limit)
