"""Operators and their tokens: only hashes kept, revoked tokens refused, roles limit kinds."""

from __future__ import annotations

import json
import stat

import pytest

from tallyroom.producers.operators import OperatorError, OperatorStore, Role, may_send, token_hash


@pytest.fixture
def store(tmp_path):
    return OperatorStore(tmp_path / "operators.json")


def test_add_returns_a_long_token_and_keeps_only_its_hash(store):
    token = store.add("alice", Role.ADMIN)
    assert len(token) >= 32
    text = store.path.read_text()
    assert token not in text
    assert json.loads(text)["operators"][0] | {"created_at": "-"} == {
        "name": "alice",
        "role": "admin",
        "token_sha256": token_hash(token),
        "created_at": "-",
        "revoked_at": None,
    }
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_each_token_is_new(store):
    assert store.add("alice") != store.add("bob")


def test_authenticate_finds_the_operator_and_refuses_others(store):
    alice, bob = store.add("alice", Role.ADMIN), store.add("bob")
    assert store.authenticate(alice).name == "alice"
    assert store.authenticate(bob).role is Role.ENTRY
    assert store.authenticate(alice[:-1]) is None
    assert store.authenticate("") is None


def test_a_revoked_token_is_refused_at_once_even_by_a_store_already_read(store, tmp_path):
    token = store.add("alice")
    reader = OperatorStore(tmp_path / "operators.json")  # another process, e.g. the entry server
    assert reader.authenticate(token).name == "alice"
    store.revoke("alice")
    assert reader.authenticate(token) is None


def test_a_revoked_operator_can_be_issued_a_new_token(store):
    old = store.add("alice")
    store.revoke("alice")
    new = store.add("alice")
    assert store.authenticate(old) is None
    assert store.authenticate(new).name == "alice"


def test_bad_names_and_duplicates_are_refused(store):
    store.add("alice")
    with pytest.raises(OperatorError, match="already exists"):
        store.add("alice")
    with pytest.raises(OperatorError, match="operator name"):
        store.add("has space")
    with pytest.raises(OperatorError, match="no operator 'carol'"):
        store.revoke("carol")


def test_a_damaged_file_is_named(store):
    store.path.write_text("{not json")
    with pytest.raises(OperatorError, match="not an operators file"):
        store.operators()


def test_only_admins_open_nights_or_withdraw():
    assert may_send(Role.ENTRY, "declaration") and may_send(Role.ENTRY, "recount")
    assert not may_send(Role.ENTRY, "night")
    assert not may_send(Role.ENTRY, "withdrawal")
    assert may_send(Role.ADMIN, "night") and may_send(Role.ADMIN, "withdrawal")
