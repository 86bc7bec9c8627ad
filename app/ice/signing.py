"""Signing and verifying ICE requests, and verifying ICE's callback signature.

Three schemes, all pure functions over strings and bytes (no I/O, no clock, no environment):

* **V3** (``ACS3-HMAC-SHA256``): what the client signs its ICE calls with. ``v3_headers`` gives
  the ``x-acs-*`` headers, ``sign_v3`` the ``Authorization`` value. It signs every header it is
  given, exactly as ``alibabacloud_tea_openapi.utils.Utils.get_authorization`` does.
* **V2** (RPC, ``HMAC-SHA1``): the legacy query-string signature, still accepted by ICE.
  ``v2_params`` gives the common parameters, ``sign_v2`` the ``Signature`` parameter.
* **Callbacks**: ICE's optional ``X-ICE-TIMESTAMP`` / ``X-ICE-SIGNATURE`` headers
  (``md5(url|timestamp|key)``), checked by ``verify_callback``.

The server side of V3 and V2, used by the ICE simulator, is ``ice.verification``. Callback
failures raise ``SignatureError``. What each scheme is, and how sure we are of
it: docs/ice.md (signing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from app.core.errors import SignatureError
from app.core.parsing import natural

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


V3_ALGORITHM = "ACS3-HMAC-SHA256"


V2_METHOD = "HMAC-SHA1"


V2_VERSION = "1.0"


# ICE's wire format for x-acs-date and Timestamp: UTC, second precision, literal "Z".
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


MAX_UNIX_SECONDS = 10**11  # the year 5138: a callback timestamp beyond it is not a time


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


def timestamp(now: datetime) -> str:
    return utc(now).strftime(TIME_FORMAT)


def utc(moment: datetime) -> datetime:
    # A naive datetime would silently be read as local time and shift every window.
    if moment.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime")
    return moment.astimezone(UTC)


def lower_names(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    # The SDK would join two such values with ","; an HTTP server would see two header lines
    # and keep one. Neither is a request anybody means to send.
    if len(lowered) != len(headers):
        raise ValueError("header names must be unique regardless of case")
    return lowered


def canonical_request(
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


def v3_mac(secret: str, canonical_request: str) -> bytes:
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
    lowered = lower_names(headers)
    payload_hash = hashlib.sha256(body).hexdigest()
    if lowered.get("x-acs-content-sha256") != payload_hash:
        raise ValueError("headers need x-acs-content-sha256 = hex sha256(body)")
    canonical = canonical_request(method, path, query, lowered, payload_hash)
    return (
        f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(sorted(lowered))},"
        f"Signature={v3_mac(access_key_secret, canonical).hex()}"
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
        "x-acs-date": timestamp(now),
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


def v2_mac(params: Mapping[str, str], method: str, secret: str) -> bytes:
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    # V2 keys the HMAC with the secret plus "&" (an empty token secret, from OAuth 1 days).
    return hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()


def sign_v2(params: Mapping[str, str], *, method: str, access_key_secret: str) -> str:
    """Base64 HMAC-SHA1 over ``METHOD&%2F&pct(canonical_query(params))``, key ``secret + "&"``.

    ``params`` excludes Signature and includes the form-body parameters.
    """
    return base64.b64encode(v2_mac(params, method, access_key_secret)).decode()


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
        "Timestamp": timestamp(now),
    }
    if security_token is not None:
        params["SecurityToken"] = security_token
    return params


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
