"""The Redis contract downstream services rely on (documented in the README).

For election ``E``:

- ``tallyroom:E:alerts``   stream; fields id, kind, ons_id, constituency, headline, json
- ``tallyroom:E:live``     pub/sub channel; the alert JSON as it lands
- ``tallyroom:E:seats``    hash party -> seats won
- ``tallyroom:E:votes``    hash party -> votes
- ``tallyroom:E:declared`` seats declared so far; ``tallyroom:E:total`` seats in the night
- ``tallyroom:E:tally``    the latest TallySnapshot as JSON (shares, gains, losses)
- ``tallyroom:E:seat:<ons_id>`` the seat's latest SeatResult as JSON
- ``tallyroom:E:winners``  hash ons_id -> SeatSummary JSON (winner, gain, majority), set with the seat
- ``tallyroom:E:night``    hash ons_id -> NightSeat JSON (name, expected time): every seat of the night
- ``tallyroom:E:audit``    stream; every write attempt of live entry: who, what, accepted or refused and why
- ``tallyroom:audit``      the same, for attempts refused before their election was known
- ``tallyroom:dead-letters`` stream of refused events (DeadLetter JSON), for operators, each once
  (``tallyroom:dead-letters:seen`` holds their identities)
- ``tallyroom:sink:<group>:filled`` hash "topic/partition" -> 1: what this Redis has been
  filled from; a partition missing from it is read again from its start
"""

from __future__ import annotations

from typing import Any

PREFIX = "tallyroom"

# One stream entry as a client with decode_responses=True returns it: (entry id, fields).
StreamEntry = tuple[str, dict[str, str]]


def stream_entries(reply: Any) -> list[StreamEntry]:
    """An XRANGE/XREVRANGE reply as entries (redis-py types replies for every decoding at once)."""
    return list(reply or [])


def read_entries(reply: Any) -> list[StreamEntry]:
    """The entries of the one stream an XREAD/XREADGROUP read ([] when it timed out)."""
    return list(reply[0][1]) if reply else []


class ElectionKeys:
    def __init__(self, election: str):
        base = f"{PREFIX}:{election}"
        self.alerts = f"{base}:alerts"
        self.live = f"{base}:live"
        self.seats = f"{base}:seats"
        self.votes = f"{base}:votes"
        self.declared = f"{base}:declared"
        self.total = f"{base}:total"
        self.tally = f"{base}:tally"
        self.version = f"{base}:tally-version"
        self.alert_ids = f"{base}:alert-ids"
        self.seat_prefix = f"{base}:seat:"
        self.winners = f"{base}:winners"
        self.night = f"{base}:night"
        # "topic/partition/offset" -> reason, for each event or stored record of this election
        # the worker refused or quarantined (the full record is in DEAD_LETTERS)
        self.refused = f"{base}:refused"
        self.audit = f"{base}:audit"

    def seat(self, ons_id: str) -> str:
        return f"{self.seat_prefix}{ons_id}"


DEAD_LETTERS = f"{PREFIX}:dead-letters"
# identity of each dead letter in DEAD_LETTERS -> 1: a record refused or quarantined again (a worker
# re-reading what it had not committed, a rebuild meeting the same stored record) is listed once
DEAD_LETTERS_SEEN = f"{PREFIX}:dead-letters:seen"
AUDIT_UNATTRIBUTED = f"{PREFIX}:audit"


def sink_filled(group: str) -> str:
    return f"{PREFIX}:sink:{group}:filled"
