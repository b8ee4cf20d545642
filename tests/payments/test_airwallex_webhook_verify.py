"""Signature verification: HMAC-SHA256(secret, x-timestamp + raw body), milliseconds, constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from subbot.payments.airwallex.webhook import WebhookRejected, parse, signature, verify

SECRET = "whsec-test"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BODY = json.dumps(
    {"id": "evt_1", "name": "payment_intent.succeeded", "data": {"object": {"id": "int_1"}}}
).encode()


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def test_signature_is_the_documented_hmac() -> None:
    ts = ms(NOW)
    expected = hmac.new(SECRET.encode(), ts.encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, ts, BODY) == expected
    assert verify(SECRET, ts, expected, BODY, NOW).id == "evt_1"


def test_millisecond_timestamp_is_not_mistaken_for_seconds() -> None:
    # The old bot compared milliseconds with seconds and rejected every genuine webhook.
    ts = ms(NOW - timedelta(seconds=30))
    assert len(ts) == 13
    assert verify(SECRET, ts, signature(SECRET, ts, BODY), BODY, NOW).name == "payment_intent.succeeded"


def test_seconds_timestamp_is_understood_too() -> None:
    ts = str(int(NOW.timestamp()))
    assert verify(SECRET, ts, signature(SECRET, ts, BODY), BODY, NOW).id == "evt_1"


def test_retries_up_to_three_days_late_are_accepted_but_older_captures_are_not() -> None:
    late = ms(NOW - timedelta(days=3, hours=1))
    assert verify(SECRET, late, signature(SECRET, late, BODY), BODY, NOW).id == "evt_1"
    ancient = ms(NOW - timedelta(days=30))
    with pytest.raises(WebhookRejected, match="window"):
        verify(SECRET, ancient, signature(SECRET, ancient, BODY), BODY, NOW)
    future = ms(NOW + timedelta(hours=1))
    with pytest.raises(WebhookRejected, match="window"):
        verify(SECRET, future, signature(SECRET, future, BODY), BODY, NOW)


@pytest.mark.parametrize(
    ("ts", "sig", "body"),
    [
        (None, "x", BODY),
        ("1", None, BODY),
        (ms(NOW), "0" * 64, BODY),
        (ms(NOW), signature("other-secret", ms(NOW), BODY), BODY),
        (ms(NOW), signature(SECRET, ms(NOW), BODY), BODY + b" "),
        (str(int(ms(NOW)) + 1), signature(SECRET, ms(NOW), BODY), BODY),
        ("12ab", signature(SECRET, "12ab", BODY), BODY),
    ],
)
def test_forged_or_tampered_deliveries_are_rejected(ts: str | None, sig: str | None, body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        verify(SECRET, ts, sig, body, NOW)
    assert info.value.status == 401


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"name": "x"}', b'{"id": 5, "name": "x"}', '{"id": "\u00e9\u202e"}'.encode()],
)
def test_malformed_events_are_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        parse(body)
    assert info.value.status == 400
