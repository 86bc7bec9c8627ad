"""Reading outside input (app/core/parsing.py), callback tokens (app/core/tokens.py), ICE's
limits on a submission (app/core/submissions.py), and per-sender allowances
(app/core/ratelimit.py)."""

from __future__ import annotations

import json

import pytest

from app.core.errors import ValidationError
from app.core.parsing import loads, natural, postgres_text, storable
from app.core.ratelimit import SenderBuckets, sender_key
from app.core.submissions import MAX_QUERY_BYTES, oversized, user_data_text
from app.core.tokens import callback_url, redacted, without_token


@pytest.mark.parametrize(
    ("raw", "maximum", "value"),
    [
        ("42", 100, 42),
        ("0", 100, 0),
        ("101", 100, None),
        ("\u0663", 100, None),  # Arabic-Indic three
        ("+1", 100, None),
        (" 1", 100, None),
        ("1_0", 100, None),
        ("", 100, None),
        ("9" * 5000, 2**63 - 1, None),
        (str(2**63 - 1), 2**63 - 1, 2**63 - 1),
        (str(2**63), 2**63 - 1, None),
    ],
)
def test_natural_takes_ascii_digits_within_a_bound(
    raw: str, maximum: int, value: int | None
) -> None:
    assert natural(raw, maximum) == value


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_json_without_pythons_extensions(text: str) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        loads(text)


def test_text_postgresql_can_hold() -> None:
    assert storable("plain")
    assert storable("日本")
    assert not storable("a\x00b")
    assert not storable("\ud800")
    assert postgres_text("a\x00\ud800") == "a\ufffd?"


def test_a_stored_body_holds_no_token() -> None:
    token = "Abcdefghijklmnop-1234567890_xyz"
    body = json.dumps(
        {"UserData": json.dumps({"NotifyAddress": callback_url("https://h", token)}), "x": token}
    ).encode()
    cleaned = without_token(body, token)
    assert token.encode() not in cleaned
    assert b"/callbacks/ice/<token>" in cleaned
    other = without_token(b'{"u": "https:\\/\\/h\\/callbacks\\/ice\\/Other-Token_12345"}', "x")
    assert b"Other-Token" not in other, "a token with JSON-escaped slashes, and not the path's"
    assert without_token(b"a body with a", "a") == b"a body with a", "a short path token is text"


def test_stored_parameters_hold_no_token() -> None:
    kept = redacted(
        {"UserData": json.dumps({"NotifyAddress": callback_url(None, "Secret-1"), "k": 1})}
    )
    assert "Secret-1" not in kept["UserData"]
    assert json.loads(kept["UserData"])["k"] == 1


def test_user_data_keeps_to_ices_512_bytes_with_the_notify_address() -> None:
    address = callback_url("https://hooks.example.com", "t" * 43)
    assert json.loads(user_data_text({"order": 42}, address)) == {
        "order": 42,
        "NotifyAddress": address,
    }
    with pytest.raises(ValidationError, match="leaves") as caught:
        user_data_text({"big": "x" * 500}, address)
    assert caught.value.field == "UserData"


def test_a_query_string_too_long_names_its_largest_parameter() -> None:
    assert oversized({"ProjectId": "p", "Timeline": "x" * 100_000}) is None, "Timeline: the body"
    assert oversized({"ProjectId": "p", "ClipsParam": "x" * MAX_QUERY_BYTES}) == "ClipsParam"


def test_a_sender_gets_its_burst_then_its_rate_and_all_share_one_allowance() -> None:
    now = [0.0]
    buckets = SenderBuckets(
        burst=2, rate=1.0, shared_burst=3, shared_rate=0.0, clock=lambda: now[0]
    )
    assert [buckets.take("10.0.0.1") for _ in range(3)] == [True, True, False]
    buckets.give_back("10.0.0.1")
    assert buckets.take("10.0.0.1")
    assert buckets.take("10.0.0.2"), "another sender, from what is left of the shared one"
    now[0] = 10.0  # the senders' buckets refill; the shared one does not
    assert not buckets.take("10.0.0.3"), "the shared allowance is spent"


def test_an_ipv6_sender_is_its_64() -> None:
    assert sender_key("2001:db8::1") == sender_key("2001:db8::ffff") == "2001:db8::/64"
    assert sender_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert sender_key(None) == ""
