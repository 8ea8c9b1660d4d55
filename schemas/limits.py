"""Limits a deployment puts on events, beyond what the schema itself refuses.

Pure, so that live entry (``tallyroom.producers.live``) refuses before sending exactly
what the worker (``tallyroom.streams.app``) would dead-letter after receiving.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tallyroom.schemas.events import MAX_CANDIDATES, AnyEvent, Declaration


class _HasLimits(Protocol):
    @property
    def max_payload_bytes(self) -> int: ...
    @property
    def max_candidates(self) -> int: ...


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int = 1_000_000
    max_candidates: int = MAX_CANDIDATES

    @classmethod
    def from_settings(cls, settings: _HasLimits) -> Limits:
        """From anything with ``max_payload_bytes`` and ``max_candidates`` (``tallyroom.settings.Settings``)."""
        return cls(settings.max_payload_bytes, settings.max_candidates)


@dataclass(frozen=True)
class Breach:
    """One limit an event goes over: the field at fault and why."""

    field: str
    message: str

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.message}"


def payload_breach(raw: bytes | str | None, limits: Limits) -> Breach | None:
    """What is wrong with the raw payload before it is even parsed: absent, too large, not UTF-8."""
    if raw is None:
        return Breach("payload", "no payload (a null value)")
    size = len(raw) if isinstance(raw, (bytes, bytearray)) else len(raw.encode("utf-8", "surrogatepass"))
    if size > limits.max_payload_bytes:
        return Breach("payload", f"{size} bytes is over the limit of {limits.max_payload_bytes}")
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Breach("payload", f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}")
    return None


def event_breaches(event: AnyEvent, limits: Limits) -> list[Breach]:
    """What a parsed, schema-valid event breaks of the deployment's limits."""
    if isinstance(event, Declaration) and len(event.candidates) > limits.max_candidates:
        return [
            Breach(
                f"{event.kind}.candidates",
                f"{len(event.candidates)} candidates is over the limit of {limits.max_candidates}",
            )
        ]
    return []
