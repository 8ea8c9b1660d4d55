"""The wire contract: every event and alert Tallyroom reads or writes, and its vocabulary.

Pure, no I/O. ``events`` (Declaration, RecountNotice, NightOpened), ``results``
(SeatResult, TallySnapshot, ResultUpdate, DeadLetter) and ``alerts`` (Alert, and
``ALERT_KINDS``, the one registry of alert kinds) are pydantic v2 models; ``parties``
holds the party vocabulary (abbreviations, aliases, full names and colours, the UK
time zone); ``limits`` the size limits; ``export`` the JSON Schema that other languages
validate against (``tallyroom schemas export``, committed under ``schemas/json``).
"""

from tallyroom.schemas.alerts import Alert, AlertKind, DeclarationRef, Provenance
from tallyroom.schemas.events import (
    Candidate,
    Declaration,
    ElectionEvent,
    NightOpened,
    Nominee,
    PreviousResult,
    RecountNotice,
    Rush,
    SeatBaseline,
    SeatEvent,
    Withdrawal,
    parse_event,
)
from tallyroom.schemas.results import (
    CandidateResult,
    DeadLetter,
    NightSeat,
    PartyTally,
    ResultUpdate,
    SeatResult,
    SeatSummary,
    Swing,
    TallySnapshot,
)

__all__ = [
    "Alert",
    "AlertKind",
    "Candidate",
    "CandidateResult",
    "DeadLetter",
    "Declaration",
    "DeclarationRef",
    "ElectionEvent",
    "NightOpened",
    "NightSeat",
    "Nominee",
    "PartyTally",
    "PreviousResult",
    "Provenance",
    "RecountNotice",
    "ResultUpdate",
    "Rush",
    "SeatBaseline",
    "SeatEvent",
    "SeatResult",
    "SeatSummary",
    "Swing",
    "TallySnapshot",
    "Withdrawal",
    "parse_event",
]
