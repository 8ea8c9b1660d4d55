"""The wire contract: every event and alert Tallyroom reads or writes.

Pure pydantic v2 models, no I/O. Other languages validate against the JSON
Schema exported by ``tallyroom schemas export`` (committed under ``schemas/json``).
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
    Withdrawal,
    parse_event,
)
from tallyroom.schemas.results import (
    CandidateResult,
    DeadLetter,
    PartyTally,
    ResultUpdate,
    SeatResult,
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
    "Nominee",
    "PartyTally",
    "PreviousResult",
    "Provenance",
    "RecountNotice",
    "ResultUpdate",
    "Rush",
    "SeatBaseline",
    "SeatResult",
    "Swing",
    "TallySnapshot",
    "Withdrawal",
    "parse_event",
]
