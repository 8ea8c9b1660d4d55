"""Faults a test can switch on in a real worker, through test-only settings.

Off unless a ``TALLYROOM_FAULT_*`` variable is set: the fault tests use them to
make one rule raise, or one batch's sends fail, in a worker process on the real
stack (``tests/faults``). Nothing here runs in a deployment that does not set them.
"""

from __future__ import annotations

from pathlib import Path

from tallyroom.schemas import Alert
from tallyroom.streams.count import Evaluate
from tallyroom.streams.rules import RuleConfig, SeatChange


class InjectedFault(RuntimeError):
    """Raised on purpose by a fault a test switched on."""


def failing_rules_for_seat(evaluate: Evaluate, ons_id: str) -> Evaluate:
    """The rules, except that they raise for the declarations of one seat."""

    def rules(change: SeatChange, config: RuleConfig) -> list[Alert]:
        if change.seat.ons_id == ons_id:
            raise InjectedFault(f"a rule failed for {ons_id} (TALLYROOM_FAULT_RULE_SEAT)")
        return evaluate(change, config)

    return rules


def fail_once_if_triggered(trigger: Path | None) -> None:
    """Raise once per trigger file: the test creates it, the first flush to see it removes it."""
    if trigger is None:
        return
    try:
        trigger.unlink()
    except FileNotFoundError:
        return
    raise InjectedFault(f"a batch's sends failed ({trigger} was there: TALLYROOM_FAULT_FLUSH_TRIGGER)")
