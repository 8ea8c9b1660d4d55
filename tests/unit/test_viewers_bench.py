"""The viewers bench's own arithmetic: reading SSE chunks split anywhere, and percentiles. No server."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from tallyroom.bench.viewers import LoadProcess, ViewerOptions, percentile_ms

BODY = (
    b"retry: 2000\r\nevent: tally\r\ndata: {}\r\n\r\n"
    b'id: 1000-0\r\ndata: {"a":1}\r\n\r\nid: 1001-3\r\ndata: {}\r\n\r\nevent: tally\r\ndata: {}\r\n\r\n'
    b"id: 1002-0\r\ndata: x\r\n\r\n: dropped\r\nretry: 5000\r\n\r\n"
)


@pytest.mark.parametrize("size", [1, 2, 7, 50, len(BODY)])
def test_alerts_are_counted_once_in_order_however_the_chunks_fall(size):
    load = LoadProcess("http://127.0.0.1:1/e/x/events", 1, 1.0)
    stream = load.streams[0]
    for at in range(0, len(BODY), size):
        load.read(stream, BODY[at : at + size])
    assert (stream.alerts, stream.last_id, stream.tallies, stream.retry_ms) == (3, b"1002-0", 2, 5000)
    assert stream.digest.hexdigest() == hashlib.blake2b(b"1000-0\n1001-3\n1002-0\n").hexdigest()
    assert sum(load.histogram) == 3


def test_percentiles_of_a_millisecond_histogram():
    histogram = Counter({5: 98, 40: 1, 900: 1})
    assert percentile_ms(histogram, 0.5) == 5
    assert percentile_ms(histogram, 0.99) == 40
    assert percentile_ms(histogram, 1.0) == 900
    assert percentile_ms(Counter(), 0.99) is None


def test_the_bench_is_bounded():
    with pytest.raises(ValueError, match="clients: 20001 is outside"):
        ViewerOptions(clients=20_001).check()
    with pytest.raises(ValueError, match="procs: 0 is outside"):
        ViewerOptions(procs=0).check()
