"""The wire contract: every event and alert Tallyroom reads or writes.

Pure pydantic v2 models, no I/O. Other languages validate against the JSON
Schema exported by ``tallyroom schemas export`` (committed under ``schemas/json``).
"""

from tallyroom.schemas.alerts import Alert, AlertKind, DeclarationRef
from tallyroom.schemas.events import (
    Candidate,
    Declaration,
    ElectionEvent,
    NightOpened,
    PreviousResult,
    RecountNotice,
    SeatBaseline,
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
    "PartyTally",
    "PreviousResult",
    "RecountNotice",
    "ResultUpdate",
    "SeatBaseline",
    "SeatResult",
    "Swing",
    "TallySnapshot",
    "parse_event",
]
