"""Log lines: redacted, one JSON object each, readable text for people."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path

import pytest

from app.core.access import ApiKey, Role
from app.settings import Settings
from app.telemetry import logs
from app.telemetry.logs import Redactor
from tests.helpers.processes import records


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with secrets, and no database: these tests only log."""
    return Settings(
        database_url="postgresql://icehook:db-password@db:5432/icehook",
        data_dir=tmp_path,
        api_keys=(ApiKey(Role.READ, "test-key-0123456789"),),
        access_key_id="test-ak",
        access_key_secret="test-secret",
    )


def test_a_short_secret_is_redacted_too() -> None:
    assert Redactor(["k9"])("key=k9; other") == "key=<secret>; other"


def test_configured_secrets_and_icehooks_own_are_redacted_by_value_and_shape() -> None:
    redact = logs.Redactor(["configured-key", 'quote"key', "a+b/c=d"])
    line = (
        'key configured-key and quote\\"key, a%2Bb%2Fc%3Dd; POST /callbacks/ice/Abc-123_xyz?x=1; '
        "NotifyAddress%3Dhttp%253A%252F%252Fh%252Fcallbacks%252Fice%252FEnc0ded-Tok; "
        "UserData=%7B%22u%22%3A%22http%3A%2F%2Fh%2Fcallbacks%2Fice%2FOnce-Encoded%22%7D; "
        "whsec_c2VjcmV0IHNlY3JldA==, whsec_c2Vj%2Bc%2Fd%3D; Authorization: Bearer some.key; "
        "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= ; "
        "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=0a1b2c3d; "
        "X-ICE-SIGNATURE: 0123456789abcdef0123456789abcdef; "
        "postgresql+psycopg://icehook:hunter2@db:5432/icehook"
    )
    redacted = redact(line)
    for secret in (
        "configured-key",
        "quote",
        "a%2Bb",
        "Abc-123_xyz",
        "Enc0ded-Tok",
        "Once-Encoded",
        "c2VjcmV0IHNlY3JldA",
        "c2Vj",
        "some.key",
        "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN",
        "0a1b2c3d",
        "0123456789abcdef0123456789abcdef",
        "hunter2",
    ):
        assert secret not in redacted, secret
    assert "/callbacks/ice/<token>?x=1" in redacted
    assert "postgresql+psycopg://icehook:<password>@db:5432/icehook" in redacted


def test_a_redacted_json_line_stays_json() -> None:
    """A secret just before an escaped quote: the quote and its backslash stay."""
    redact = logs.Redactor()
    inner = {
        "url": "/callbacks/ice/Tok-1",
        "auth": "Bearer k1",
        "sig": "Signature=abc",
        "X-ICE-SIGNATURE": "0123456789abcdef0123456789abcdef",
    }
    line = json.dumps({"message": json.dumps(inner)})
    redacted = json.loads(redact(line))
    assert json.loads(redacted["message"]) == {
        "url": "/callbacks/ice/<token>",
        "auth": "Bearer <key>",
        "sig": "Signature=<signature>",
        "X-ICE-SIGNATURE": "<signature>",
    }


def test_a_line_is_one_json_object_with_the_request_id_and_a_redacted_traceback(
    settings: Settings, captured: io.StringIO
) -> None:
    logs.configure("json", captured)
    log = logging.getLogger("app.somewhere")
    log.info("before the key is known: sekrit-api-key")
    logs.protect_settings(
        dataclasses.replace(
            settings,
            api_keys=(ApiKey(Role.ADMIN, "sekrit-api-key"),),
            database_url="postgresql://u:db-pass-word@h/d",
        )
    )
    log.info("the password db-pass-word alone")
    log.info("outside any request")
    token = logs.REQUEST_ID.set("req-1")
    try:
        try:
            raise RuntimeError("failed on /callbacks/ice/the-token with sekrit-api-key")
        except RuntimeError:
            log.exception("it broke: %s", "sekrit-api-key")
    finally:
        logs.REQUEST_ID.reset(token)
    before, password, outside, broke = records(captured)
    assert before["message"] == "before the key is known: sekrit-api-key"
    assert password["message"] == "the password <secret> alone"
    assert outside["message"] == "outside any request"
    assert (outside["level"], outside["logger"]) == ("INFO", "app.somewhere")
    assert "request_id" not in outside
    assert outside["time"].endswith("+00:00")
    assert broke["request_id"] == "req-1"
    assert broke["message"] == "it broke: <secret>"
    assert "RuntimeError: failed on /callbacks/ice/<token> with <secret>" in broke["exc_info"]
    assert "the-token" not in captured.getvalue()
    assert captured.getvalue().count("sekrit-api-key") == 1  # before it was protected


def test_text_format_for_people(settings: Settings, captured: io.StringIO) -> None:
    logs.configure("text", captured)
    logging.getLogger("app.x").warning("plain %s", "words")
    assert captured.getvalue().rstrip().endswith(" WARNING app.x plain words")
