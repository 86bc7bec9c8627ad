"""Signing webhooks (app/webhooks/signing.py) in both Standard Webhooks schemes: ``v1``
(HMAC, checked with the ``standardwebhooks`` library) and ``v1a`` (ed25519, checked with
``cryptography`` over the specification's signed content), through a rotation's overlap."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook

from app.telemetry.logs import Redactor
from app.webhooks.signing import new_secret, public_key, signing_secrets, webhook_headers
from tests.helpers.receiver import verify_v1a

BODY = '{"type":"job.succeeded","data":{"id":"j","name":"中文 😀"}}'


def signed_content(headers: dict[str, str], body: str) -> bytes:
    """What the specification signs: ``{webhook-id}.{webhook-timestamp}.{body}``."""
    return f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()


def verifies(whpk: str, signature: str, content: bytes) -> bool:
    assert whpk.startswith("whpk_")
    raw = base64.b64decode(whpk.removeprefix("whpk_"), validate=True)
    assert len(raw) == 32
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(signature), content)
    except InvalidSignature:
        return False
    return True


def test_the_reference_librarys_vector_is_signed_alike() -> None:
    # The Standard Webhooks Go library's asymmetric signing test: its key is the 32-byte seed.
    secret = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
    headers = webhook_headers(
        message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        body='{"test": 2432232314}',
        secrets=[secret],
        now=datetime.fromtimestamp(1614265330, UTC),
        scheme="v1a",
    )
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUux"
        "qtaiHeYGb7KaaBRdM5WqyeFiL8Ag==",
    }
    assert public_key(secret) == "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="


def test_a_v1a_signature_verifies_with_the_public_key_over_the_signed_content() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    secret = new_secret("v1a")
    assert secret.startswith("whsk_")
    assert len(base64.b64decode(secret.removeprefix("whsk_"), validate=True)) == 32
    whpk = public_key(secret)
    headers = webhook_headers(
        message_id="msg_1", body=BODY, secrets=[secret], now=now, scheme="v1a"
    )
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    scheme, signature = headers["webhook-signature"].split(",")
    assert scheme == "v1a"
    assert verifies(whpk, signature, signed_content(headers, BODY))
    assert not verifies(whpk, signature, signed_content(headers, BODY + " "))
    assert not verifies(public_key(new_secret("v1a")), signature, signed_content(headers, BODY))
    assert verify_v1a(whpk, BODY, headers)


def test_during_a_rotations_overlap_both_keys_sign_v1a() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    old, new = new_secret("v1a"), new_secret("v1a")
    row = {"secret": new, "previous_secret": old, "previous_secret_until": now}
    during = signing_secrets(row, now - timedelta(seconds=1))
    headers = webhook_headers(message_id="msg_2", body=BODY, secrets=during, now=now, scheme="v1a")
    entries = headers["webhook-signature"].split(" ")
    assert [entry.split(",")[0] for entry in entries] == ["v1a", "v1a"]
    content = signed_content(headers, BODY)
    assert verifies(public_key(new), entries[0].split(",")[1], content)
    assert verifies(public_key(old), entries[1].split(",")[1], content)
    assert verify_v1a(public_key(old), BODY, headers)
    assert verify_v1a(public_key(new), BODY, headers)
    after = signing_secrets(row, now + timedelta(seconds=1))
    headers = webhook_headers(message_id="msg_2", body=BODY, secrets=after, now=now, scheme="v1a")
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert not verify_v1a(public_key(old), BODY, headers)


def test_a_v1_signature_still_verifies_with_the_standardwebhooks_library() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    old, new = new_secret(), new_secret("v1")
    assert new.startswith("whsec_")
    headers = webhook_headers(message_id="msg_3", body=BODY, secrets=[new, old], now=now)
    assert [entry[:3] for entry in headers["webhook-signature"].split(" ")] == ["v1,", "v1,"]
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers)["type"] == "job.succeeded"


def test_a_key_of_the_other_scheme_is_refused_not_used() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    hmac, ed25519 = new_secret("v1"), new_secret("v1a")
    for scheme, secrets in (("v1a", [hmac]), ("v1", [ed25519]), ("v1a", [ed25519, hmac])):
        with pytest.raises(ValueError, match="signs only with") as refused:
            webhook_headers(message_id="m", body=BODY, secrets=secrets, now=now, scheme=scheme)
        assert hmac not in str(refused.value)
        assert ed25519 not in str(refused.value)
    with pytest.raises(ValueError, match="no signature scheme"):
        new_secret("v2")


@pytest.mark.parametrize(
    "secret",
    [
        "whsk_" + base64.b64encode(b"k" * 64).decode(),  # seed||public: not what is made here
        "whsk_" + base64.b64encode(b"k" * 31).decode(),
        "whsk_not base64!",
        "whsec_" + base64.b64encode(b"k" * 32).decode(),
    ],
)
def test_only_a_whsk_32_byte_seed_is_a_secret_key(secret: str) -> None:
    with pytest.raises(ValueError, match="not a whsk_ key") as refused:
        public_key(secret)
    assert secret.split("_", 1)[1] not in str(refused.value)


def test_the_receiver_refuses_what_the_library_would_refuse() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    secret = new_secret("v1a")
    whpk = public_key(secret)
    headers = webhook_headers(message_id="m", body=BODY, secrets=[secret], now=now, scheme="v1a")
    sent = now.timestamp()
    assert verify_v1a(whpk, BODY, headers, now=sent + 299)
    assert verify_v1a(whpk, BODY, headers, now=sent - 299)
    assert not verify_v1a(whpk, BODY, headers, now=sent + 301)  # too old
    assert not verify_v1a(whpk, BODY, headers, now=sent - 301)  # too new
    v1 = webhook_headers(message_id="m", body=BODY, secrets=[new_secret()], now=now)
    assert not verify_v1a(whpk, BODY, v1), "a v1 signature is no v1a one"
    assert not verify_v1a(whpk, BODY, {**headers, "webhook-id": "other"})
    assert not verify_v1a(whpk, BODY, {**headers, "webhook-signature": "v1a,AAAA"})


def test_a_whsk_key_and_v1a_signatures_never_reach_a_log_line() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    secret = new_secret("v1a")
    headers = webhook_headers(message_id="m", body=BODY, secrets=[secret], now=now, scheme="v1a")
    signature = headers["webhook-signature"].removeprefix("v1a,")
    encoded = secret.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    line = Redactor()(f"key {secret} again {encoded}; webhook-signature: v1a,{signature}")
    for text in (secret.removeprefix("whsk_"), encoded.removeprefix("whsk_"), signature):
        assert text not in line
    assert line.count("whsk_<secret>") == 2
    assert "v1a,<signature>" in line


def test_the_documented_receiver_verifies_v1a_and_refuses_what_it_should() -> None:
    now = datetime.now(UTC)  # the receiver's checks are against the clock
    page = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = page.split("## Webhook signatures", 1)[1]
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    old, new = new_secret("v1a"), new_secret("v1a")
    names: dict[str, Any] = {}
    exec(compile(example, "docs/api.md", "exec"), names)  # noqa: S102 (the docs' own code)
    names["TRUSTED"][:] = [public_key(old)]
    verify = names["verify_v1a"]
    body = BODY.encode()
    both = webhook_headers(message_id="m", body=BODY, secrets=[new, old], now=now, scheme="v1a")
    verify(body, both)  # the old key's signature, second in the header
    with pytest.raises(ValueError, match="no v1a signature"):
        verify(body + b" ", both)
    with pytest.raises(ValueError, match="no v1a signature"):
        verify(
            body, webhook_headers(message_id="m", body=BODY, secrets=[new], now=now, scheme="v1a")
        )
    stale = webhook_headers(
        message_id="m", body=BODY, secrets=[old], now=now - timedelta(minutes=6), scheme="v1a"
    )
    with pytest.raises(ValueError, match="5 minutes"):
        verify(body, stale)
