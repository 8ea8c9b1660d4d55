"""Faults a test can switch on in a real worker, through test-only settings.

Off unless a ``TALLYROOM_FAULT_*`` variable is set: the fault tests use them to
make one rule raise, one batch's sends fail, or one record go missing, in a worker process on the real
stack (``tests/faults``). Nothing here runs in a deployment that does not set them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tallyroom.schemas import Alert
from tallyroom.streams.count import Evaluate
from tallyroom.streams.rules import RuleConfig, SeatChange

log = logging.getLogger("tallyroom.worker")
MessageCallback = Callable[[Any], Awaitable[Any]]


class InjectedFault(RuntimeError):
    """Raised on purpose by a fault a test switched on."""


def failing_rules_for_seat(evaluate: Evaluate, ons_id: str) -> Evaluate:
    """The rules, except that they raise for the declarations of one seat."""

    def rules(change: SeatChange, config: RuleConfig) -> list[Alert]:
        if change.seat.ons_id == ons_id:
            raise InjectedFault(f"a rule failed for {ons_id} (TALLYROOM_FAULT_RULE_SEAT)")
        return evaluate(change, config)

    return rules


def fired(trigger: Path | None) -> bool:
    """True once per trigger file: the test creates it, the first look that finds it removes it."""
    if trigger is None:
        return False
    try:
        trigger.unlink()
    except FileNotFoundError:
        return False
    return True


def fail_once_if_triggered(trigger: Path | None) -> None:
    """Raise once per trigger file (``fired``), at a batch's flush."""
    if fired(trigger):
        raise InjectedFault(f"a batch's sends failed ({trigger} was there: TALLYROOM_FAULT_FLUSH_TRIGGER)")


def losing_a_record_once(callback: MessageCallback, topic: str, trigger: Path) -> MessageCallback:
    """Faust's message callback, except that the first record of ``topic`` to come once the trigger
    file is there is dropped, as Faust itself can lose one (``streams.app.Positions``): it never
    reaches the stream, is never acknowledged, and the consumer's position moves past it."""

    async def callback_losing_one(message: Any) -> Any:
        if message.topic == topic and fired(trigger):
            log.warning(
                "fault: %s/%d@%d lost on its way to the agent (TALLYROOM_FAULT_LOSE_TRIGGER)",
                message.topic,
                message.partition,
                message.offset,
            )
            return None
        return await callback(message)

    return callback_losing_one
