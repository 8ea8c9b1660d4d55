"""Fixtures for tests that run against the real local stack (Kafka + Redis)."""

from __future__ import annotations

import pytest

from tallyroom import stack as local_stack
from tallyroom.settings import Settings, get_settings


@pytest.fixture(scope="session")
def stack() -> Settings:
    """Bring the local stack up (a no-op when it already runs) and leave it up:
    restarting the broker per session would cost more than the tests."""
    settings = get_settings()
    local_stack.up(settings)
    return settings
