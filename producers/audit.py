"""The audit trail of live entry: every write attempt, who made it, and what became of it.

One Redis stream per election (``tallyroom:E:audit``, see ``tallyroom.consumers.keys``);
an attempt refused before any record named its election (no token, a foreign
Origin, a body that is not JSON) goes to the stream of the election the entry
server was started for, or to ``tallyroom:audit`` when it has none. Entries are flat
string fields, so ``redis-cli XRANGE`` reads them as well as ``tallyroom audit``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from tallyroom.consumers.keys import AUDIT_UNATTRIBUTED, ElectionKeys, stream_entries

log = logging.getLogger("tallyroom.audit")
# Plenty for a night (one entry per record sent); the stream is a record, not a queue.
MAX_ENTRIES = 1_000_000
ACCEPTED, REFUSED, UNACKNOWLEDGED = "accepted", "refused", "unacknowledged"


@dataclass
class Attempt:
    """One record someone tried to write (or a whole request refused before its records were read)."""

    outcome: str  # accepted, refused or unacknowledged (sent, but the broker did not confirm it)
    source: str  # cli, http, console
    operator: str = ""  # empty when the request named no active operator
    role: str = ""
    action: str = "request"  # the record's kind (declaration, night, ...), or "request" for the whole
    election: str = ""
    ons_id: str = ""
    revision: str = ""
    record: int = 0  # the record's number in the request or file; 0 for the request itself
    status: str = ""  # the HTTP status answered
    reason: str = ""
    client: str = ""
    topic: str = ""
    partition: str = ""
    offset: str = ""

    def fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()} | {"at": datetime.now(UTC).isoformat()}


def audit_key(election: str | None) -> str:
    return ElectionKeys(election).audit if election else AUDIT_UNATTRIBUTED


class AuditTrail:
    def __init__(self, client: redis.Redis, default_election: str | None = None):
        self.client = client
        self.default_election = default_election

    def record(self, attempts: Iterable[Attempt]) -> bool:
        """Write the attempts; False (and an error logged) when Redis cannot take them.

        Entry goes on without Redis: Kafka is the record of what was sent, and each
        event names its operator itself (``entered_by``), so a result is never held
        up because the audit copy is away.
        """
        pipe = self.client.pipeline(transaction=False)
        for attempt in attempts:
            key = audit_key(attempt.election or self.default_election)
            fields: dict[Any, Any] = attempt.fields()  # redis-py types field values for every encoding at once
            pipe.xadd(key, fields, maxlen=MAX_ENTRIES, approximate=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.error("audit trail not written (Redis: %s): %s", exc, [a.fields() for a in attempts])
            return False
        return True


def read_audit(client: redis.Redis, election: str | None, operator: str | None = None) -> list[dict[str, str]]:
    """The election's audit trail, oldest first, each entry with its stream id as ``entry_id``."""
    entries: list[dict[str, str]] = []
    last = "-"
    while True:
        batch = stream_entries(client.xrange(audit_key(election), min=last if last == "-" else f"({last}", count=1000))
        if not batch:
            return entries
        entries += [
            fields | {"entry_id": entry_id}
            for entry_id, fields in batch
            if operator is None or fields.get("operator") == operator
        ]
        last = batch[-1][0]
