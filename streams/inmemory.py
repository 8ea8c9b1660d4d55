"""The tallier's edges held in memory: a broker that acknowledges at once, and dict tables.

For the unit tests of ``tallyroom.streams.app.Tallier`` and for ``bench.hotpath``,
which run the worker's real batch code with no Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tallyroom.streams import faust_compat


@dataclass
class MemoryBroker:
    """Records every send in order; ``fail`` makes the acknowledgements fail instead."""

    records: list[tuple[str, bytes | None, bytes | None, int | None]] = field(default_factory=list)
    fail: BaseException | None = None

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> asyncio.Future:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            future.set_exception(self.fail)
        else:
            self.records.append((topic, key, value, partition))
            future.set_result(None)
        return future

    def on(self, topic: str) -> list[bytes]:
        return [value for t, _, value, _ in self.records if t == topic and value is not None]


@dataclass
class MemoryTables:
    """``TableAccess`` as plain dicts; ``origins`` plays the changelog's (topic, partition, offset)."""

    seats: dict[str, bytes] = field(default_factory=dict)
    stored_nights: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, str], faust_compat.Origin] = field(default_factory=dict)
    seats_changelog: str = "worker-seats-changelog"
    nights_changelog: str = "worker-nights-changelog"

    def nights(self) -> Iterable[tuple[str, Any]]:
        return list(self.stored_nights.items())

    def night(self, election: str) -> Any:
        return self.stored_nights.get(election)

    def set_night(self, received: Any, election: str, value: dict[str, Any]) -> None:
        self.stored_nights[election] = value

    def origin(self, table: str, key: str) -> faust_compat.Origin | None:
        return self.origins.get((table, key))
