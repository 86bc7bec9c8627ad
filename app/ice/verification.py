"""Verifying ICE requests, V3 and V2: the server side of ``ice.signing``, used by the ICE
simulator. Failures raise ``RequestSignatureError``, whose ``reason`` maps onto one ICE
error code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from app.core.errors import SignatureError
from app.ice.signing import (
    TIME_FORMAT,
    V2_METHOD,
    V2_VERSION,
    V3_ALGORITHM,
    canonical_request,
    utc,
    v2_mac,
    v3_mac,
)

_V3_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


# Headers that must be present and signed on every V3 request. Signing host and every x-acs-*
# header is what the V3 doc requires; without it a captured request could be replayed with a
# fresh x-acs-date, or with another x-acs-action, and still verify.
_V3_REQUIRED = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)


_V2_REQUIRED = (
    "AccessKeyId",
    "Action",
    "Version",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
)


SignatureFailure = Literal["malformed", "unknown_key", "mismatch", "expired", "missing"]


class RequestSignatureError(SignatureError):
    """A V3 or V2 request signature failed; ``reason`` says how, for choosing ICE's error code."""

    def __init__(self, reason: SignatureFailure, message: str) -> None:
        super().__init__(message)
        self.reason: SignatureFailure = reason


@dataclass(frozen=True)
class VerifiedRequest:
    """Who signed a request that verified, and what it asks for."""

    access_key_id: str
    nonce: str  # x-acs-signature-nonce or SignatureNonce, so the caller can refuse replays
    action: str
    version: str
    signature_version: Literal["v3", "v2"]


def _parse_timestamp(value: str, name: str) -> datetime:
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise RequestSignatureError(
            "malformed", f"{name} must be UTC yyyy-MM-ddTHH:mm:ssZ"
        ) from None


def _check_age(moment: datetime, now: datetime, limit: timedelta, name: str) -> None:
    if abs(utc(now) - moment) > limit:
        raise RequestSignatureError("expired", f"{name} is more than {limit} away from now")


def _require_equal(expected: bytes, given: bytes, message: str) -> None:
    """The one constant-time comparison of request signatures and body hashes."""
    if not hmac.compare_digest(expected, given):
        raise RequestSignatureError("mismatch", message)


def _parse_authorization(value: str) -> tuple[str, list[str], bytes]:
    """Split ``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``."""
    scheme, _, rest = value.partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field = part.strip().partition("=")
        if not sep or name in fields:
            raise RequestSignatureError("malformed", "Authorization is malformed")
        fields[name] = field
    credential = fields.pop("Credential", "")
    signed = fields.pop("SignedHeaders", "")
    signature = fields.pop("Signature", "")
    if scheme != V3_ALGORITHM or fields or not credential or not signed:
        raise RequestSignatureError(
            "malformed",
            f"Authorization must be {V3_ALGORITHM} Credential=..,SignedHeaders=..,Signature=..",
        )
    if not _V3_SIGNATURE.fullmatch(signature):
        raise RequestSignatureError("malformed", "Signature must be 64 hex digits")
    names = signed.split(";")
    if any(not name or name != name.lower() for name in names) or len(set(names)) != len(names):
        raise RequestSignatureError(
            "malformed", "SignedHeaders must be distinct lower-case names joined by ';'"
        )
    return credential, names, bytes.fromhex(signature)


def _verify_v3(
    *,
    authorization: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime,
    max_skew: timedelta,
) -> VerifiedRequest:
    access_key_id, signed, signature = _parse_authorization(authorization)
    for name in _V3_REQUIRED:
        if name not in headers:
            raise RequestSignatureError("missing", f"header {name} is required")
    must_sign = {*_V3_REQUIRED, *(n for n in headers if n.startswith("x-acs-"))}
    if "content-type" in headers:
        must_sign.add("content-type")
    unsigned = sorted(must_sign.difference(signed))
    if unsigned:
        raise RequestSignatureError("malformed", f"SignedHeaders must list {', '.join(unsigned)}")
    absent = [name for name in signed if name not in headers]
    if absent:
        raise RequestSignatureError("malformed", f"signed header {absent[0]} is not in the request")
    secret = secret_for(access_key_id)
    if secret is None:
        raise RequestSignatureError("unknown_key", f"access key {access_key_id} is not found")
    payload_hash = hashlib.sha256(body).hexdigest()
    _require_equal(
        payload_hash.encode(),
        headers["x-acs-content-sha256"].strip().lower().encode(),
        "x-acs-content-sha256 does not match the body",
    )
    canonical = canonical_request(
        method, path, query, {name: headers[name] for name in signed}, payload_hash
    )
    _require_equal(
        v3_mac(secret, canonical), signature, "the signature does not match our calculation"
    )
    # Checked only once the signature verifies, so an unsigned request learns nothing from it.
    date = _parse_timestamp(headers["x-acs-date"].strip(), "x-acs-date")
    _check_age(date, now, max_skew, "x-acs-date")
    return VerifiedRequest(
        access_key_id=access_key_id,
        nonce=headers["x-acs-signature-nonce"].strip(),
        action=headers["x-acs-action"].strip(),
        version=headers["x-acs-version"].strip(),
        signature_version="v3",
    )


def _verify_v2(
    *,
    method: str,
    query: Mapping[str, str],
    form: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    now: datetime,
    max_age: timedelta,
) -> VerifiedRequest:
    both = sorted(query.keys() & form.keys())
    if both:
        raise RequestSignatureError("malformed", f"{both[0]} is both in the query and the body")
    params = {**query, **form}
    given = params.pop("Signature")
    for name in _V2_REQUIRED:
        if name not in params:
            raise RequestSignatureError("missing", f"parameter {name} is required")
    if params["SignatureMethod"] != V2_METHOD:
        raise RequestSignatureError("malformed", f"SignatureMethod must be {V2_METHOD}")
    if params.get("SignatureVersion", V2_VERSION) != V2_VERSION:
        raise RequestSignatureError("malformed", f"SignatureVersion must be {V2_VERSION}")
    try:
        signature = base64.b64decode(given, validate=True)
    except binascii.Error:
        raise RequestSignatureError("malformed", "Signature is not base64") from None
    secret = secret_for(params["AccessKeyId"])
    if secret is None:
        raise RequestSignatureError(
            "unknown_key", f"access key {params['AccessKeyId']} is not found"
        )
    _require_equal(
        v2_mac(params, method, secret), signature, "the signature does not match our calculation"
    )
    _check_age(_parse_timestamp(params["Timestamp"], "Timestamp"), now, max_age, "Timestamp")
    return VerifiedRequest(
        access_key_id=params["AccessKeyId"],
        nonce=params["SignatureNonce"],
        action=params["Action"],
        version=params["Version"],
        signature_version="v2",
    )


def verify_request(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    form: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime,
    v3_max_skew: timedelta = timedelta(minutes=15),
    v2_max_age: timedelta = timedelta(minutes=31),
) -> VerifiedRequest:
    """Verify a request as ICE's gateway would, or raise RequestSignatureError.

    ``query`` and ``form`` are already decoded (form-urlencoded: ``+`` is a space). Header
    names may have any case. V3 when Authorization starts with ACS3-HMAC-SHA256: host and every
    x-acs-* header (and content-type, when sent) must be signed, a listed header must be present,
    x-acs-content-sha256 must hash the body, and x-acs-date must be within ``v3_max_skew`` of
    ``now``. V2 when the query has Signature: query plus form parameters minus Signature are
    signed, SignatureMethod is HMAC-SHA1, Timestamp is within ``v2_max_age``. Neither: "missing".
    The nonce is returned, not checked: refusing a replay needs state, which is the caller's.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "").strip()
    if authorization.startswith(V3_ALGORITHM):
        return _verify_v3(
            authorization=authorization,
            method=method,
            path=path,
            query=query,
            headers=lowered,
            body=body,
            secret_for=secret_for,
            now=now,
            max_skew=v3_max_skew,
        )
    if "Signature" in query:
        return _verify_v2(
            method=method,
            query=query,
            form=form,
            secret_for=secret_for,
            now=now,
            max_age=v2_max_age,
        )
    if authorization:
        raise RequestSignatureError("malformed", f"Authorization must use {V3_ALGORITHM}")
    raise RequestSignatureError("missing", "no Authorization header and no Signature parameter")
