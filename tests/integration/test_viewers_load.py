"""The viewers bench at a small size (200 SSE clients on a real `tallyroom web`, the 2024 night at max).

A benchmark's figures are never judged here: only that every client got every alert of the
night exactly once, in order, and that nothing (event streams, the state API, the page) answered 5xx.
"""

from __future__ import annotations

import pytest

from tallyroom.bench.viewers import ViewerOptions, run
from tests.integration.conftest import stack  # noqa: F401  (the real stack)

pytestmark = pytest.mark.integration

VIEWERS_REDIS_DB = 8  # 9 is the bench's default; 10-15 are other suites'


def test_two_hundred_viewers_get_every_alert_and_no_500(stack, tmp_path):  # noqa: F811
    options = ViewerOptions(clients=200, procs=1, ramp_per_s=400, timeout=180, redis_db=VIEWERS_REDIS_DB, out=tmp_path)
    results = run(stack, options)
    assert results["held"] == 200 and results["failed_to_hold"] == 0
    assert results["alerts_in_stream"] > 500  # the 2024 night raises about 580
    assert results["clients_with_every_alert"] == 200, results["incomplete_sample"]
    assert results["deliveries"] >= 200 * results["alerts_in_stream"]
    for answered in (results["stream_statuses"], results["page_statuses"]):
        assert answered and all(status == "200" for status in answered), answered
