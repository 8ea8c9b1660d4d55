"""Redis stream entry ids: parsed, checked and ordered. Pure: no I/O.

An id is ``<milliseconds>-<sequence>``, each part an unsigned 64-bit number; ``<milliseconds>``
alone means sequence 0. Tuples of the two parts order as Redis orders the entries.
"""

from __future__ import annotations

import re

StreamId = tuple[int, int]

PATTERN = r"^\d{1,20}(-\d{1,20})?$"
U64_MAX = 2**64 - 1
_SHAPE = re.compile(PATTERN)


def parse_stream_id(text: str, name: str = "stream id") -> StreamId:
    """``"1720137600000-3"`` -> (1720137600000, 3); a ValueError naming ``name`` otherwise."""
    if not _SHAPE.match(text):
        raise ValueError(f"{name}: {text!r} is not a Redis stream id (<milliseconds>-<sequence>)")
    ms, _, seq = text.partition("-")
    parts = (int(ms), int(seq or 0))
    if max(parts) > U64_MAX:
        raise ValueError(f"{name}: {text!r} is out of range: each part of a stream id is at most {U64_MAX}")
    return parts


def format_stream_id(ident: StreamId) -> str:
    return f"{ident[0]}-{ident[1]}"
