"""The wire contract: every event and alert Tallyroom reads or writes, and its vocabulary.

Pure, no I/O. ``events`` (Declaration, RecountNotice, NightOpened), ``results``
(SeatResult, TallySnapshot, ResultUpdate, DeadLetter) and ``alerts`` (Alert, and
``ALERT_KINDS``, the one registry of alert kinds) are pydantic v2 models; ``parties``
holds the party vocabulary (abbreviations, aliases, full names and colours, the UK
time zone); ``limits`` the size limits; ``export`` the JSON Schema that other languages
validate against (``tallyroom schemas export``, committed under ``schemas/json``).
"""

from tallyroom.schemas.alerts import Alert, AlertKind, DeclarationRef
from tallyroom.schemas.events import (
    Candidate,
    Declaration,
    ElectionEvent,
    NightOpened,
    RecountNotice,
    SeatBaseline,
    parse_event,
)
from tallyroom.schemas.results import DeadLetter, PartyTally, ResultUpdate, SeatResult, TallySnapshot

__all__ = [
    "Alert",
    "AlertKind",
    "Candidate",
    "DeadLetter",
    "Declaration",
    "DeclarationRef",
    "ElectionEvent",
    "NightOpened",
    "PartyTally",
    "RecountNotice",
    "ResultUpdate",
    "SeatBaseline",
    "SeatResult",
    "TallySnapshot",
    "parse_event",
]
