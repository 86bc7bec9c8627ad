"""Signing and verifying ICE requests, and verifying ICE's callback signature.

Three schemes, all pure functions over strings and bytes (no I/O, no clock, no environment):

* **V3** (``ACS3-HMAC-SHA256``): what the client signs its ICE calls with. ``v3_headers`` gives
  the ``x-acs-*`` headers, ``sign_v3`` the ``Authorization`` value. It signs every header it is
  given, exactly as ``alibabacloud_tea_openapi.utils.Utils.get_authorization`` does.
* **V2** (RPC, ``HMAC-SHA1``): the legacy query-string signature, still accepted by ICE.
  ``v2_params`` gives the common parameters, ``sign_v2`` the ``Signature`` parameter.
* **Callbacks**: ICE's optional ``X-ICE-TIMESTAMP`` / ``X-ICE-SIGNATURE`` headers
  (``md5(url|timestamp|key)``), checked by ``verify_callback``.

``verify_request`` is the server side of V3 and V2, used by the local ICE simulator. Its
failures raise ``RequestSignatureError``, whose ``reason`` maps onto one ICE error code.
Callback failures raise plain ``SignatureError``. What each scheme is, and how sure we are of
it: docs/ice.md (signing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from app.core.errors import SignatureError
from app.core.parsing import natural

__all__ = [
    "EMPTY_SHA256",
    "V3_ALGORITHM",
    "RequestSignatureError",
    "SignatureFailure",
    "VerifiedRequest",
    "callback_signature",
    "canonical_query",
    "percent_encode",
    "sign_v2",
    "sign_v3",
    "v2_params",
    "v3_headers",
    "verify_callback",
    "verify_request",
]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
V3_ALGORITHM = "ACS3-HMAC-SHA256"
V2_METHOD = "HMAC-SHA1"
V2_VERSION = "1.0"

# ICE's wire format for x-acs-date and Timestamp: UTC, second precision, literal "Z".
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_V3_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
MAX_UNIX_SECONDS = 10**11  # the year 5138: a callback timestamp beyond it is not a time
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


# --- shared pieces --------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes; only ``A-Za-z0-9-_.~`` stay as they are."""
    # quote() never encodes its always-safe set (ASCII letters, digits and "-_.~"); safe=""
    # removes its default "/" so that "/" becomes %2F as Alibaba requires.
    return quote(value, safe="")


def canonical_query(params: Mapping[str, str]) -> str:
    """``name=value`` pairs, both encoded, sorted by name, joined by ``&``."""
    # Sorted by the raw name, as both SDK signers do (same order as the encoded name for the
    # ASCII names ICE uses).
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def _timestamp(now: datetime) -> str:
    return _utc(now).strftime(_TIME_FORMAT)


def _utc(moment: datetime) -> datetime:
    # A naive datetime would silently be read as local time and shift every window.
    if moment.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime")
    return moment.astimezone(UTC)


def _parse_timestamp(value: str, name: str) -> datetime:
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise RequestSignatureError(
            "malformed", f"{name} must be UTC yyyy-MM-ddTHH:mm:ssZ"
        ) from None


def _check_age(moment: datetime, now: datetime, limit: timedelta, name: str) -> None:
    if abs(_utc(now) - moment) > limit:
        raise RequestSignatureError("expired", f"{name} is more than {limit} away from now")


def _require_equal(expected: bytes, given: bytes, message: str) -> None:
    """The one constant-time comparison of request signatures and body hashes."""
    if not hmac.compare_digest(expected, given):
        raise RequestSignatureError("mismatch", message)


# --- V3 ---------------------------------------------------------------------------------------


def _lower_names(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    # The SDK would join two such values with ","; an HTTP server would see two header lines
    # and keep one. Neither is a request anybody means to send.
    if len(lowered) != len(headers):
        raise ValueError("header names must be unique regardless of case")
    return lowered


def _canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
) -> str:
    """The V3 canonical request. ``headers`` is exactly the signed set, names lower-cased."""
    names = sorted(headers)
    # str.strip(), as the SDK does: it trims every Unicode whitespace, not only spaces and tabs.
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    return "\n".join(
        (
            method,
            path or "/",  # the SDK signs "/" for an empty path
            canonical_query(query),
            canonical_headers,  # ends in "\n", hence the doc's empty line before SignedHeaders
            ";".join(names),
            payload_hash,
        )
    )


def _v3_mac(secret: str, canonical_request: str) -> bytes:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return hmac.new(secret.encode(), f"{V3_ALGORITHM}\n{digest}".encode(), hashlib.sha256).digest()


def sign_v3(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """Return the Authorization header value.

    Signs every header given (names lower-cased, values trimmed), exactly as the official SDK
    does. The caller must already have put x-acs-content-sha256 (= hex sha256(body)) in headers.
    Raises ValueError when it has not, or when two header names differ only in case.
    """
    lowered = _lower_names(headers)
    payload_hash = hashlib.sha256(body).hexdigest()
    if lowered.get("x-acs-content-sha256") != payload_hash:
        raise ValueError("headers need x-acs-content-sha256 = hex sha256(body)")
    canonical = _canonical_request(method, path, query, lowered, payload_hash)
    return (
        f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(sorted(lowered))},"
        f"Signature={_v3_mac(access_key_secret, canonical).hex()}"
    )


def v3_headers(
    *,
    host: str,
    action: str,
    version: str,
    body: bytes,
    now: datetime,
    nonce: str,
    content_type: str | None = None,
    security_token: str | None = None,
    access_key_id: str | None = None,
) -> dict[str, str]:
    """The x-acs-* (and host, content-type) headers a V3 request carries, before Authorization.

    With security_token: x-acs-security-token (and x-acs-accesskey-id, as the SDK does; then
    access_key_id is required). ``now`` must be timezone-aware.
    """
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": _timestamp(now),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if content_type is not None:
        headers["content-type"] = content_type
    if security_token is not None:
        if access_key_id is None:
            raise ValueError("access_key_id is required with security_token")
        headers["x-acs-accesskey-id"] = access_key_id
        headers["x-acs-security-token"] = security_token
    return headers


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
    canonical = _canonical_request(
        method, path, query, {name: headers[name] for name in signed}, payload_hash
    )
    _require_equal(
        _v3_mac(secret, canonical), signature, "the signature does not match our calculation"
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


# --- V2 ---------------------------------------------------------------------------------------


def _v2_mac(params: Mapping[str, str], method: str, secret: str) -> bytes:
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    # V2 keys the HMAC with the secret plus "&" (an empty token secret, from OAuth 1 days).
    return hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()


def sign_v2(params: Mapping[str, str], *, method: str, access_key_secret: str) -> str:
    """Base64 HMAC-SHA1 over ``METHOD&%2F&pct(canonical_query(params))``, key ``secret + "&"``.

    ``params`` excludes Signature and includes the form-body parameters.
    """
    return base64.b64encode(_v2_mac(params, method, access_key_secret)).decode()


def v2_params(
    *,
    action: str,
    version: str,
    access_key_id: str,
    now: datetime,
    nonce: str,
    security_token: str | None = None,
) -> dict[str, str]:
    """The common V2 query parameters, before the API's own and before Signature."""
    params = {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": V2_METHOD,
        "SignatureVersion": V2_VERSION,
        "SignatureNonce": nonce,
        "Timestamp": _timestamp(now),
    }
    if security_token is not None:
        params["SecurityToken"] = security_token
    return params


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
        _v2_mac(params, method, secret), signature, "the signature does not match our calculation"
    )
    _check_age(_parse_timestamp(params["Timestamp"], "Timestamp"), now, max_age, "Timestamp")
    return VerifiedRequest(
        access_key_id=params["AccessKeyId"],
        nonce=params["SignatureNonce"],
        action=params["Action"],
        version=params["Version"],
        signature_version="v2",
    )


# --- server side ------------------------------------------------------------------------------


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


# --- callbacks --------------------------------------------------------------------------------


def callback_signature(url: str, timestamp: str, auth_key: str) -> str:
    """ICE's X-ICE-SIGNATURE: md5 hex of ``url|timestamp|auth_key``."""
    # MD5 is ICE's choice, not ours; usedforsecurity=False keeps it available on FIPS builds.
    content = f"{url}|{timestamp}|{auth_key}".encode()
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def verify_callback(
    *,
    url: str,
    timestamp: str | None,
    signature: str | None,
    auth_keys: Sequence[str],
    now: float,
    window_seconds: float = 300.0,
) -> None:
    """Accept an ICE callback, or raise SignatureError.

    The signature (hex, any case) must match one of ``auth_keys`` (several during a rotation)
    and the timestamp (UNIX seconds) must be within ``window_seconds`` of ``now``, either way.
    Messages never contain a key or the expected signature.
    """
    if not timestamp or not signature:
        raise SignatureError("callback lacks the X-ICE-TIMESTAMP or X-ICE-SIGNATURE header")
    # ASCII digits, and no more of them than a time has: int() would also take "+1", "1_0"
    # and other scripts' digits, and refuse 4,300 digits with a ValueError.
    seconds = natural(timestamp, MAX_UNIX_SECONDS)
    if seconds is None:
        raise SignatureError("X-ICE-TIMESTAMP is not a UNIX time in seconds")
    given = signature.lower().encode()
    matched = False
    for key in auth_keys:
        # Every key is tried, even after a match, so the time taken does not say which matched.
        expected = callback_signature(url, timestamp, key).encode()
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("X-ICE-SIGNATURE does not match any callback auth key")
    if abs(now - seconds) > window_seconds:
        raise SignatureError(f"X-ICE-TIMESTAMP is more than {window_seconds:g} s away from now")
