"""tune_gc: the long-running processes' garbage collector (tallyroom.lifecycle)."""

from __future__ import annotations

import gc

import pytest

from tallyroom.lifecycle import tune_gc
from tallyroom.settings import Settings


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_is_alive_at_start_is_frozen_out_of_the_collectors_scans(unfrozen):
    held = [[n] for n in range(1_000)]  # containers alive at start
    tune_gc(Settings())
    assert gc.get_freeze_count() > len(held)


def test_freezing_can_be_switched_off(unfrozen, monkeypatch):
    monkeypatch.setenv("TALLYROOM_GC_FREEZE", "false")
    tune_gc(Settings())
    assert gc.get_freeze_count() == 0
