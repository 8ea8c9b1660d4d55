"""Webhook pure pieces: the signature, the backoff schedule, the headers, the per-URL group, settings."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from tallyroom.consumers.subscribe import parse_kinds, wanted
from tallyroom.consumers.webhooks import (
    ALERT_ID_HEADER,
    ELECTION_HEADER,
    SIGNATURE_HEADER,
    RetryPolicy,
    backoff_schedule,
    group_for,
    request_headers,
    signature,
    verify_signature,
)
from tallyroom.settings import Settings


def test_signature_is_hmac_sha256_hex_of_the_raw_body():
    # RFC 4231, test case 2.
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert signature(b"Jefe", b"what do ya want for nothing?") == signature("Jefe", b"what do ya want for nothing?")


def test_verify_signature_accepts_only_the_exact_body_and_secret():
    body = b'{"id":"abc","kind":"gain"}'
    header = signature("s3cret", body)
    assert verify_signature("s3cret", body, header)
    assert not verify_signature("s3cret", body + b" ", header)
    assert not verify_signature("other", body, header)
    assert not verify_signature("s3cret", body, header.removeprefix("sha256="))
    assert not verify_signature("s3cret", body, None)


def test_backoff_doubles_from_the_first_delay_and_is_capped():
    assert backoff_schedule(8, 0.5, 60) == [0.5, 1, 2, 4, 8, 16, 32]
    assert backoff_schedule(8, 0.5, 5) == [0.5, 1, 2, 4, 5, 5, 5]
    assert backoff_schedule(1, 0.5, 5) == []
    assert backoff_schedule(3, 2, 1) == [1, 1]


def test_backoff_refuses_fewer_than_one_attempt():
    with pytest.raises(ValueError, match="webhook_max_attempts"):
        backoff_schedule(0, 0.5, 5)


def test_retry_policy_from_settings_defaults():
    policy = RetryPolicy.from_settings(Settings(_env_file=None))
    assert policy.max_attempts == 8
    assert policy.delays()[:3] == [0.5, 1, 2]


def test_headers_carry_id_election_and_signature_only_with_a_secret():
    body = b"{}"
    signed = request_headers("a1", "ge2024", body, "k")
    assert signed[ALERT_ID_HEADER] == "a1" and signed[ELECTION_HEADER] == "ge2024"
    assert signed[SIGNATURE_HEADER] == signature("k", body)
    assert SIGNATURE_HEADER not in request_headers("a1", "ge2024", body, None)


def test_each_url_has_its_own_stable_group():
    assert group_for("http://a/x") == group_for("http://a/x")
    assert group_for("http://a/x") != group_for("http://a/y")
    assert group_for("http://a/x") == "webhook:" + hashlib.sha1(b"http://a/x").hexdigest()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("http://a/x,https://b/y", ["http://a/x", "https://b/y"]),
        (" http://a/x , ", ["http://a/x"]),
        ('["http://a/x", "https://b/y"]', ["http://a/x", "https://b/y"]),
        ("", []),
    ],
)
def test_webhook_urls_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("TALLYROOM_WEBHOOK_URLS", raw)
    assert Settings(_env_file=None).webhook_urls == expected


def test_a_webhook_url_that_is_not_http_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("TALLYROOM_WEBHOOK_URLS", "http://ok/x,ftp://nope")
    with pytest.raises(ValidationError, match="webhook_urls: 'ftp://nope'"):
        Settings(_env_file=None)


def test_parse_kinds():
    assert parse_kinds(None) is None and parse_kinds(" ") is None
    assert parse_kinds("gain, independent_gain") == {"gain", "independent_gain"}
    with pytest.raises(ValueError, match="--kinds: unknown alert kind 'gian'"):
        parse_kinds("gain,gian")


def test_wanted_filters_by_kind_and_skips_entries_without_an_alert():
    entry = {"kind": "gain", "json": "{}"}
    assert wanted(entry, None) and wanted(entry, frozenset({"gain"}))
    assert not wanted(entry, frozenset({"marginal"}))
    assert not wanted({}, None)
