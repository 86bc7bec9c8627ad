"""Tests of app.signing: official vectors, cross-checks against the official SDK, round trips
through verify_request, and ICE callback verification."""

from __future__ import annotations

import hashlib
import io
import json
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from alibabacloud_ice20201109 import models
from alibabacloud_ice20201109.client import Client
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from darabonba.core import DaraCore
from hypothesis import example, given
from hypothesis import strategies as st

import app.ice.signing
from app.core.errors import SignatureError
from app.ice.signing import (
    EMPTY_SHA256,
    V3_ALGORITHM,
    callback_signature,
    canonical_query,
    canonical_request,
    percent_encode,
    sign_v2,
    sign_v3,
    v2_params,
    v3_headers,
    verify_callback,
)
from app.ice.verification import (
    RequestSignatureError,
    SignatureFailure,
    VerifiedRequest,
    verify_request,
)

# --- official and ICE vectors (docs/ice.md: signing) ----------------------------------------------

OFFICIAL_V3_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}
OFFICIAL_V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": EMPTY_SHA256,
}
V2_NONCE = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
ICE_V2_PARAMS = {
    "Action": "GetMediaProducingJob",
    "Version": "2020-11-09",
    "Format": "JSON",
    "AccessKeyId": "testid",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": V2_NONCE,
    "Timestamp": "2024-05-01T00:00:00Z",
    "JobId": "****cdb3e74639973036bc84****",
}


def test_empty_sha256() -> None:
    assert EMPTY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_official_v3_vector() -> None:
    canonical = canonical_request("POST", "/", OFFICIAL_V3_QUERY, OFFICIAL_V3_HEADERS, EMPTY_SHA256)
    assert (
        hashlib.sha256(canonical.encode()).hexdigest()
        == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    authorization = sign_v3(
        method="POST",
        path="/",
        query=OFFICIAL_V3_QUERY,
        headers=OFFICIAL_V3_HEADERS,
        body=b"",
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
    )
    assert authorization == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_ice_v3_vector() -> None:
    authorization = sign_v3(
        method="POST",
        path="/",
        query={"JobId": "****cdb3e74639973036bc84****"},
        headers={
            "accept": "application/json",
            "host": "ice.cn-shanghai.aliyuncs.com",
            "x-acs-action": "GetMediaProducingJob",
            "x-acs-version": "2020-11-09",
            "x-acs-date": "2024-05-01T00:00:00Z",
            "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
            "x-acs-content-sha256": EMPTY_SHA256,
        },
        body=b"",
        access_key_id="testid",
        access_key_secret="testsecret",
    )
    assert authorization == (
        "ACS3-HMAC-SHA256 Credential=testid,"
        "SignedHeaders=accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version,"
        "Signature=09d5e7258d66e5fb13e4ceaf64390ad96bc71288eb7b7264f21e9fd669598284"
    )


def test_official_v2_vector() -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": V2_NONCE,
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert sign_v2(params, method="GET", access_key_secret="testsecret") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [("POST", "eNG4K2pvWg0HEfub00mzx9tBB7s="), ("GET", "DklcSLLu/PIDhz0P+6jpZFd5LRI=")],
)
def test_ice_v2_vectors(method: str, expected: str) -> None:
    assert sign_v2(ICE_V2_PARAMS, method=method, access_key_secret="testsecret") == expected


@pytest.mark.parametrize(
    ("url", "timestamp", "key", "expected"),
    [
        (
            "https://www.example.com/your/callback",
            "1519375990",
            "Test123",
            "c587b80d2d0ede300e8967937da7219b",
        ),
        (
            "https://cb.example.com/ice/notify",
            "1700000000",
            "AbcDef123",
            "ed7207641192aff83e5e33217bd1c77e",
        ),
    ],
)
def test_callback_vectors(url: str, timestamp: str, key: str, expected: str) -> None:
    assert callback_signature(url, timestamp, key) == expected


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("AZaz09-_.~", "AZaz09-_.~"),
        (" ", "%20"),
        ("*", "%2A"),
        ("/", "%2F"),
        ("+", "%2B"),
        ("%", "%25"),
        ("&=", "%26%3D"),
        ("中", "%E4%B8%AD"),
        ("😀", "%F0%9F%98%80"),
        ("", ""),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_canonical_query_sorts_and_encodes() -> None:
    assert canonical_query({"b": "x y", "a": "1", "a.b": ""}) == "a=1&a.b=&b=x%20y"
    assert canonical_query({}) == ""


# --- cross-checks against the official SDK -----------------------------------------------------
#
# How the SDK (alibabacloud_tea_openapi 0.4.6, utils.py) canonicalises, and so what is drawn here:
# * V3 query: only the *values* are encoded (quote(v, safe="~")), names go in as they are. Names
#   are therefore drawn from the unreserved set A-Za-z0-9-_.~, where encoding is the identity.
#   (icehook encodes names too, as the V3 doc says; ICE's names are all ASCII letters.)
# * V3 headers: names lower-cased, values str.strip()-ed (every Unicode whitespace), None values
#   skipped, and two names equal but for case joined with ",". Header names are drawn as HTTP
#   tokens, unique regardless of case (icehook refuses such pairs with ValueError), values
#   printable text (no control characters, tabs only as padding) padded with whitespace.
# * V2: names and values both encoded, so names are drawn like values; no V2-only exclusion.
# * Everywhere: no lone surrogates (codec="utf-8"), which neither side can encode as UTF-8.
#   None values, which the SDK skips, cannot occur in a Mapping[str, str].

_SPECIAL = " *~/+%&=?#:;,'\"{}[]\\"
_WORLD = "中文日本語한국어é€😀🎬\u3000\u00a0"
_CHARS = st.one_of(st.sampled_from(_SPECIAL + _WORLD), st.characters(codec="utf-8"))
_JSON_TEXT = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_CHARS, max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_CHARS), inner, max_size=4),
    max_leaves=8,
).map(lambda value: json.dumps(value, ensure_ascii=False))
VALUES = st.one_of(st.text(_CHARS, max_size=40), _JSON_TEXT)
UNRESERVED_NAMES = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=12)
ANY_NAMES = st.text(_CHARS, min_size=1, max_size=12)
_TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_PRINTABLE = st.one_of(
    st.sampled_from(_SPECIAL + _WORLD), st.characters(codec="utf-8", exclude_categories=["Cc"])
)
_PADDING = st.text(" \t\u3000", max_size=2)
HEADER_VALUES = st.builds(
    lambda left, core, right: left + core + right, _PADDING, st.text(_PRINTABLE), _PADDING
)
SECRETS = st.text(_CHARS, min_size=1, max_size=30)
METHODS = st.sampled_from(["POST", "GET"])
PATHS = st.sampled_from(["/", "", "/v1/jobs"])

# One example that certainly holds every awkward character, besides whatever hypothesis draws.
AWKWARD = {
    "Timeline": json.dumps({"Text": "a b*c~d/e+f%g&h=i 中文 😀"}, ensure_ascii=False),
    "Plain": "x y*z~/+%&=",
    "Empty": "",
}


@st.composite
def header_maps(draw: st.DrawFn) -> dict[str, str]:
    """Header names unique regardless of case, in a mix of cases, never x-acs-content-sha256."""
    names = draw(
        st.sets(
            st.text(_TOKEN, min_size=1, max_size=16)
            .map(str.lower)
            .filter(lambda name: name != "x-acs-content-sha256"),
            max_size=6,
        )
    )
    return {
        draw(st.sampled_from([name, name.upper(), name.title()])): draw(HEADER_VALUES)
        for name in sorted(names)
    }


@given(
    method=METHODS,
    path=PATHS,
    query=st.dictionaries(UNRESERVED_NAMES, VALUES, max_size=6),
    headers=header_maps(),
    body=st.binary(max_size=64),
    access_key_id=st.text(_CHARS, min_size=1, max_size=20),
    secret=SECRETS,
)
@example(
    method="POST",
    path="/",
    query=AWKWARD,
    headers={"Host": " ice.cn-shanghai.aliyuncs.com\t", "X-Acs-Action": "中 😀"},
    body=b"Timeline=a+b%2Bc",
    access_key_id="testid",
    secret="testsecret",
)
def test_sign_v3_matches_sdk(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    access_key_id: str,
    secret: str,
) -> None:
    payload = hashlib.sha256(body).hexdigest()
    headers = {**headers, "x-acs-content-sha256": payload}
    request = SimpleNamespace(method=method, pathname=path, query=query, headers=headers)
    expected = Utils.get_authorization(request, V3_ALGORITHM, payload, access_key_id, secret)
    ours = sign_v3(
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        access_key_id=access_key_id,
        access_key_secret=secret,
    )
    assert ours == expected


@given(
    method=METHODS,
    params=st.dictionaries(ANY_NAMES, VALUES, max_size=8),
    secret=SECRETS,
)
@example(method="POST", params={**ICE_V2_PARAMS, **AWKWARD}, secret="testsecret")
@example(method="GET", params={**ICE_V2_PARAMS, "名 前": "中文 😀"}, secret="testsecret")
def test_sign_v2_matches_sdk(method: str, params: dict[str, str], secret: str) -> None:
    assert sign_v2(params, method=method, access_key_secret=secret) == Utils.get_rpcsignature(
        params, method, secret
    )


def test_sign_v3_refuses_a_missing_or_wrong_body_hash() -> None:
    def sign(headers: dict[str, str]) -> str:
        return sign_v3(
            method="POST",
            path="/",
            query={},
            headers=headers,
            body=b"x",
            access_key_id="a",
            access_key_secret="s",
        )

    with pytest.raises(ValueError, match="x-acs-content-sha256"):
        sign({"host": "h"})
    with pytest.raises(ValueError, match="x-acs-content-sha256"):
        sign({"host": "h", "x-acs-content-sha256": EMPTY_SHA256})
    with pytest.raises(ValueError, match="regardless of case"):
        sign({"host": "h", "Host": "h", "x-acs-content-sha256": hashlib.sha256(b"x").hexdigest()})


# --- request headers and parameters ------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
HOST = "ice.cn-shanghai.aliyuncs.com"


def test_v3_headers() -> None:
    shanghai = timezone(timedelta(hours=8))
    headers = v3_headers(
        host=HOST,
        action="SubmitMediaProducingJob",
        version="2020-11-09",
        body=b"Timeline=x",
        now=datetime(2024, 5, 1, 20, 0, 0, tzinfo=shanghai),
        nonce="n1",
        content_type="application/x-www-form-urlencoded",
    )
    assert headers == {
        "host": HOST,
        "x-acs-action": "SubmitMediaProducingJob",
        "x-acs-version": "2020-11-09",
        "x-acs-date": "2024-05-01T12:00:00Z",
        "x-acs-signature-nonce": "n1",
        "x-acs-content-sha256": hashlib.sha256(b"Timeline=x").hexdigest(),
        "content-type": "application/x-www-form-urlencoded",
    }


def test_v3_headers_with_security_token() -> None:
    headers = v3_headers(
        host=HOST,
        action="A",
        version="V",
        body=b"",
        now=NOW,
        nonce="n",
        security_token="tok",
        access_key_id="STS.id",
    )
    assert headers["x-acs-security-token"] == "tok"
    assert headers["x-acs-accesskey-id"] == "STS.id"
    assert headers["x-acs-content-sha256"] == EMPTY_SHA256
    assert "content-type" not in headers
    with pytest.raises(ValueError, match="access_key_id"):
        v3_headers(
            host=HOST, action="A", version="V", body=b"", now=NOW, nonce="n", security_token="t"
        )


def test_naive_datetime_is_refused() -> None:
    naive = datetime(2024, 5, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        v3_headers(host=HOST, action="A", version="V", body=b"", now=naive, nonce="n")
    with pytest.raises(ValueError, match="timezone-aware"):
        v2_params(action="A", version="V", access_key_id="k", now=naive, nonce="n")


def test_v2_params() -> None:
    assert v2_params(
        action="GetMediaProducingJob",
        version="2020-11-09",
        access_key_id="testid",
        now=NOW,
        nonce=V2_NONCE,
        security_token="tok",
    ) == {
        "Action": "GetMediaProducingJob",
        "Version": "2020-11-09",
        "Format": "JSON",
        "AccessKeyId": "testid",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": V2_NONCE,
        "Timestamp": "2024-05-01T12:00:00Z",
        "SecurityToken": "tok",
    }
    assert "SecurityToken" not in v2_params(
        action="A", version="V", access_key_id="k", now=NOW, nonce="n"
    )


# --- verify_request ----------------------------------------------------------------------------

KEYS = {"testid": "testsecret", "otherid": "othersecret"}
SECRET = KEYS["testid"]


def _wire(params: dict[str, str]) -> dict[str, str]:
    """What a server decodes from a query or form that darabonba encoded (quote_plus)."""
    return dict(parse_qsl(urlencode(params), keep_blank_values=True))


@dataclass(frozen=True)
class Received:
    """A request as the server sees it: query and form decoded, headers in any case."""

    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    form: dict[str, str] = field(default_factory=dict)
    path: str = "/"

    def verify(self, now: datetime = NOW) -> VerifiedRequest:
        return verify_request(
            method=self.method,
            path=self.path,
            query=self.query,
            form=self.form,
            headers=self.headers,
            body=self.body,
            secret_for=KEYS.get,
            now=now,
        )

    def failure(self, now: datetime = NOW) -> SignatureFailure:
        with pytest.raises(RequestSignatureError) as info:
            self.verify(now)
        assert isinstance(info.value, SignatureError)
        return info.value.reason

    def with_headers(self, **changes: str | None) -> Received:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in changes}
        headers.update({k: v for k, v in changes.items() if v is not None})
        return replace(self, headers=headers)


def v3_request(
    *,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    access_key_id: str = "testid",
    secret: str = SECRET,
    signed_at: datetime = NOW,
    extra: dict[str, str] | None = None,
) -> Received:
    """Sign as the client does, then hand over what the server would receive."""
    query = {"JobId": "****cdb3e74639973036bc84****"} if query is None else query
    body = urlencode(form).encode() if form else b""
    headers = v3_headers(
        host=HOST,
        action="SubmitMediaProducingJob",
        version="2020-11-09",
        body=body,
        now=signed_at,
        nonce="nonce-3",
        content_type="application/x-www-form-urlencoded" if form else None,
    )
    headers.update({"accept": "application/json", **(extra or {})})
    headers["Authorization"] = sign_v3(
        method="POST",
        path="/",
        query=query,
        headers=headers,
        body=body,
        access_key_id=access_key_id,
        access_key_secret=secret,
    )
    # Servers hand header names over in their own case; verify_request must not care.
    served = {name.title(): value for name, value in headers.items()}
    return Received("POST", _wire(query), served, body, _wire(form or {}))


def v2_request(
    *,
    method: str = "POST",
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    access_key_id: str = "testid",
    secret: str = SECRET,
    signed_at: datetime = NOW,
) -> Received:
    query = {"JobId": "****cdb3e74639973036bc84****"} if query is None else query
    form = form or {}
    params = {
        **v2_params(
            action="GetMediaProducingJob",
            version="2020-11-09",
            access_key_id=access_key_id,
            now=signed_at,
            nonce="nonce-2",
        ),
        **query,
    }
    params["Signature"] = sign_v2({**params, **form}, method=method, access_key_secret=secret)
    body = urlencode(form).encode()
    return Received(method, _wire(params), {"Host": HOST}, body, _wire(form))


# Values a server only gets back right if it decodes "+" as a space and re-encodes canonically.
PLUS_AND_SPACES = {"Title": "a+b c", "UserData": '{"k": "v w+x/y*z~"}', "Name": "中文 😀"}


def test_v3_round_trip() -> None:
    verified = v3_request(query=PLUS_AND_SPACES, form={"Timeline": '{"a": "b+c d"}'}).verify()
    assert verified == VerifiedRequest(
        access_key_id="testid",
        nonce="nonce-3",
        action="SubmitMediaProducingJob",
        version="2020-11-09",
        signature_version="v3",
    )


def test_v3_round_trip_with_security_token() -> None:
    query = {"JobId": "j"}
    headers = v3_headers(
        host=HOST,
        action="GetMediaProducingJob",
        version="2020-11-09",
        body=b"",
        now=NOW,
        nonce="n",
        security_token="tok",
        access_key_id="testid",
    )
    headers["authorization"] = sign_v3(
        method="POST",
        path="/",
        query=query,
        headers=headers,
        body=b"",
        access_key_id="testid",
        access_key_secret="testsecret",
    )
    assert Received("POST", query, headers).verify().access_key_id == "testid"
    tampered = Received("POST", query, headers).with_headers(**{"x-acs-security-token": "other"})
    assert tampered.failure() == "mismatch"


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_v2_round_trip(method: str) -> None:
    verified = v2_request(method=method, query=PLUS_AND_SPACES).verify()
    assert verified == VerifiedRequest(
        access_key_id="testid",
        nonce="nonce-2",
        action="GetMediaProducingJob",
        version="2020-11-09",
        signature_version="v2",
    )


def test_v2_round_trip_signs_the_form_body() -> None:
    request = v2_request(form={"Timeline": '{"a": "b+c d 中"}'})
    assert request.verify().signature_version == "v2"
    assert replace(request, form={"Timeline": "{}"}).failure() == "mismatch"
    assert replace(request, form={}).failure() == "mismatch"


# The V2 common parameters (which the API's own must not overwrite) and Signature (which would
# turn a V3 request into a V2 one) are ICE's names, not the API's.
_V2_NAMES = {*ICE_V2_PARAMS, "Signature", "SecurityToken"}


@given(
    query=st.dictionaries(ANY_NAMES.filter(lambda name: name not in _V2_NAMES), VALUES, max_size=5)
)
@example(query=AWKWARD)
def test_any_query_round_trips(query: dict[str, str]) -> None:
    assert v3_request(query=query).verify().signature_version == "v3"
    assert v2_request(query=query).verify().signature_version == "v2"


def test_v3_failures() -> None:
    good = v3_request()
    assert v3_request(secret="wrong").failure() == "mismatch"
    assert v3_request(access_key_id="nobody").failure() == "unknown_key"
    assert replace(good, query={"JobId": "other"}).failure() == "mismatch"
    assert replace(good, query={}).failure() == "mismatch"
    tampered_body = replace(good, body=b"Timeline=x")
    assert tampered_body.failure() == "mismatch"
    with pytest.raises(RequestSignatureError, match="x-acs-content-sha256 does not match"):
        tampered_body.verify()
    assert good.with_headers(**{"x-acs-action": "DeleteMediaInfos"}).failure() == "mismatch"
    assert good.with_headers(accept="text/xml").failure() == "mismatch"
    assert replace(good, method="GET").failure() == "mismatch"


def test_v3_expired() -> None:
    assert v3_request(signed_at=NOW - timedelta(minutes=20)).failure() == "expired"
    assert v3_request(signed_at=NOW + timedelta(minutes=20)).failure() == "expired"
    assert v3_request(signed_at=NOW - timedelta(minutes=14)).verify().signature_version == "v3"
    late = v3_request()
    assert late.failure(now=NOW + timedelta(minutes=16)) == "expired"


def test_v3_body_with_tampered_hash_header() -> None:
    # Body and its declared hash changed together: the signature covers the header.
    request = v3_request(form={"Timeline": "a"})
    forged = replace(request, body=b"Timeline=b").with_headers(
        **{"x-acs-content-sha256": hashlib.sha256(b"Timeline=b").hexdigest()}
    )
    assert forged.failure() == "mismatch"


def _reauthorize(request: Received, edit: Callable[[str], str]) -> Received:
    return request.with_headers(authorization=edit(request.headers["Authorization"]))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda a: "garbage", id="no-scheme"),
        pytest.param(lambda a: "Bearer abc.def", id="other-scheme"),
        pytest.param(lambda a: "ACS3-HMAC-SHA256 garbage", id="no-fields"),
        pytest.param(lambda a: "ACS3-HMAC-SHA256", id="scheme-only"),
        pytest.param(lambda a: a.replace("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3"), id="sm3"),
        pytest.param(lambda a: a.replace("HMAC-SHA256 ", "HMAC-SHA256X "), id="bad-scheme"),
        pytest.param(lambda a: a[:-64] + "zz" * 32, id="bad-hex"),
        pytest.param(lambda a: a[:-2], id="short-signature"),
        pytest.param(lambda a: a.replace("Credential=testid", "Credential="), id="no-credential"),
        pytest.param(lambda a: a.replace("Credential=", "Cred="), id="renamed-field"),
        pytest.param(lambda a: a + ",Extra=1", id="extra-field"),
        pytest.param(lambda a: a + ",Signature=" + "0" * 64, id="repeated-field"),
        pytest.param(
            lambda a: a.replace("SignedHeaders=accept", "SignedHeaders=Accept"), id="upper"
        ),
        pytest.param(lambda a: a.replace("accept;", "accept;;"), id="empty-name"),
        pytest.param(lambda a: a.replace("accept;", "accept;accept;"), id="repeated-name"),
        pytest.param(lambda a: a.replace("x-acs-date;", ""), id="unsigned-date"),
        pytest.param(lambda a: a.replace(";host", ""), id="unsigned-host"),
        pytest.param(lambda a: a.replace("accept;", "accept;x-missing;"), id="absent-header"),
    ],
)
def test_v3_malformed_authorization(edit: Callable[[str], str]) -> None:
    request = v3_request(form={"Timeline": "x"})
    assert request.verify().signature_version == "v3"  # the same request, unedited, is fine
    assert _reauthorize(request, edit).failure() == "malformed"


def test_v3_unsigned_headers_that_must_be_signed() -> None:
    request = v3_request()
    assert request.with_headers(**{"x-acs-extra": "1"}).failure() == "malformed"
    assert request.with_headers(**{"content-type": "text/plain"}).failure() == "malformed"
    # Headers outside host, content-type and x-acs-* may travel unsigned, as proxies add them.
    assert request.with_headers(**{"x-forwarded-for": "10.0.0.1"}).verify().action


def test_v3_listed_header_absent() -> None:
    request = v3_request(extra={"x-custom": "1"})
    assert request.verify().signature_version == "v3"
    assert request.with_headers(**{"x-custom": None}).failure() == "malformed"


def test_v3_required_header_absent() -> None:
    request = v3_request()
    assert request.with_headers(**{"x-acs-date": None}).failure() == "missing"
    assert request.with_headers(**{"x-acs-signature-nonce": None}).failure() == "missing"


def test_v3_malformed_date() -> None:
    # Signed with a date in another format: the signature verifies, the date does not parse.
    query: dict[str, str] = {}
    headers = v3_headers(host=HOST, action="A", version="V", body=b"", now=NOW, nonce="n")
    headers["x-acs-date"] = "Wed, 01 May 2024 12:00:00 GMT"
    headers["Authorization"] = sign_v3(
        method="POST",
        path="/",
        query=query,
        headers=headers,
        body=b"",
        access_key_id="testid",
        access_key_secret="testsecret",
    )
    assert Received("POST", query, headers).failure() == "malformed"


def test_nothing_is_missing() -> None:
    assert Received("POST", {"JobId": "j"}, {"Host": HOST}).failure() == "missing"


def test_v2_failures() -> None:
    good = v2_request()
    assert v2_request(secret="wrong").failure() == "mismatch"
    assert v2_request(access_key_id="nobody").failure() == "unknown_key"
    assert replace(good, query={**good.query, "JobId": "other"}).failure() == "mismatch"
    assert replace(good, method="GET").failure() == "mismatch"
    assert replace(good, query={**good.query, "Signature": "!!!"}).failure() == "malformed"
    method = {**good.query, "SignatureMethod": "HMAC-SHA256"}
    assert replace(good, query=method).failure() == "malformed"
    version = {**good.query, "SignatureVersion": "2.0"}
    assert replace(good, query=version).failure() == "malformed"
    no_action = {k: v for k, v in good.query.items() if k != "Action"}
    assert replace(good, query=no_action).failure() == "missing"
    assert replace(good, form={"JobId": good.query["JobId"]}).failure() == "malformed"


def test_v2_timestamp() -> None:
    assert v2_request(signed_at=NOW - timedelta(minutes=40)).failure() == "expired"
    assert v2_request(signed_at=NOW + timedelta(minutes=40)).failure() == "expired"
    assert v2_request(signed_at=NOW - timedelta(minutes=30)).verify().signature_version == "v2"
    bad = v2_request()
    query = {k: v for k, v in bad.query.items() if k != "Signature"}
    query["Timestamp"] = "1714564800"
    query["Signature"] = sign_v2(query, method="POST", access_key_secret="testsecret")
    assert replace(bad, query=query).failure() == "malformed"


# --- the official SDK client, captured on the way out and verified -----------------------------


@pytest.fixture
def sdk_requests() -> Iterator[list[Any]]:
    """Patch darabonba's transport to record what the ICE SDK client would send."""
    sent: list[Any] = []

    def do_action(request: Any, runtime_option: Any = None) -> Any:
        sent.append(request)
        body = io.BytesIO(json.dumps({"RequestId": "r", "JobId": "j"}).encode())
        return mock.Mock(
            status_code=200,
            status_message="OK",
            headers={"content-type": "application/json"},
            body=body,
        )

    with mock.patch.object(DaraCore, "do_action", staticmethod(do_action)):
        yield sent


@pytest.mark.parametrize(("algorithm", "version"), [(None, "v3"), ("v2", "v2")])
def test_sdk_client_requests_verify(
    sdk_requests: list[Any], algorithm: str | None, version: str
) -> None:
    config = Config(
        access_key_id="testid",
        access_key_secret="testsecret",
        endpoint=HOST,
        signature_algorithm=algorithm,
    )
    Client(config).submit_media_producing_job(
        models.SubmitMediaProducingJobRequest(
            timeline=json.dumps({"Text": "a b+c&d=e 中文 😀"}, ensure_ascii=False),
            output_media_config='{"MediaURL": "https://b.oss/x y.mp4"}',
            user_data='{"NotifyAddress": "https://h/cb?a=b"}',
        )
    )
    (sent,) = sdk_requests
    body = sent.body.encode() if isinstance(sent.body, str) else sent.body or b""
    received = Received(
        method=sent.method,
        path=sent.pathname,
        query=dict(parse_qsl(urlsplit(DaraCore.compose_url(sent)).query, keep_blank_values=True)),
        headers=dict(sent.headers),
        body=body,
        form=dict(parse_qsl(body.decode(), keep_blank_values=True)),
    )
    verified = received.verify(now=datetime.now(UTC))
    assert verified.signature_version == version
    assert verified.action == "SubmitMediaProducingJob"
    assert verified.version == "2020-11-09"
    assert received.failure(now=datetime.now(UTC) + timedelta(hours=1)) == "expired"


# --- callbacks ---------------------------------------------------------------------------------

CB_URL = "https://cb.example.com/ice/notify"
CB_TS = "1700000000"
CB_KEY = "AbcDef123"
CB_SIGNATURE = "ed7207641192aff83e5e33217bd1c77e"


def _callback(
    *,
    url: str = CB_URL,
    timestamp: str | None = CB_TS,
    signature: str | None = CB_SIGNATURE,
    keys: tuple[str, ...] = (CB_KEY,),
    now: float = 1700000000 + 10,
) -> None:
    verify_callback(url=url, timestamp=timestamp, signature=signature, auth_keys=keys, now=now)


def test_callback_accepted() -> None:
    _callback()
    _callback(signature=CB_SIGNATURE.upper())
    _callback(keys=("OldKey123", CB_KEY))  # rotation: the second key matches
    _callback(keys=(CB_KEY, "NewKey456"))
    _callback(now=1700000000 - 300)
    _callback(now=1700000000 + 300)


def test_callback_tries_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(url: str, timestamp: str, auth_key: str) -> str:
        calls.append(auth_key)
        return callback_signature(url, timestamp, auth_key)

    monkeypatch.setattr(app.ice.signing, "callback_signature", counting)
    _callback(keys=(CB_KEY, "NewKey456", "ThirdKey789"))
    assert calls == [CB_KEY, "NewKey456", "ThirdKey789"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"keys": ("WrongKey1",)}, id="wrong-key"),
        pytest.param({"keys": ()}, id="no-keys"),
        pytest.param({"url": CB_URL + "?x=1"}, id="tampered-url"),
        pytest.param({"url": "http://cb.example.com/ice/notify"}, id="other-scheme"),
        pytest.param({"now": 1700000000 + 301}, id="too-old"),
        pytest.param({"now": 1700000000 - 301}, id="from-the-future"),
        pytest.param({"timestamp": None}, id="no-timestamp"),
        pytest.param({"signature": None}, id="no-signature"),
        pytest.param({"timestamp": ""}, id="empty-timestamp"),
        pytest.param({"signature": ""}, id="empty-signature"),
        pytest.param({"timestamp": "abc"}, id="non-numeric"),
        pytest.param({"timestamp": "1700000001"}, id="other-timestamp"),
        pytest.param({"signature": CB_SIGNATURE[:-1]}, id="short-signature"),
        pytest.param({"signature": "中" + CB_SIGNATURE[1:]}, id="non-ascii-signature"),
    ],
)
def test_callback_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(SignatureError) as info:
        _callback(**changes)
    message = str(info.value)
    assert message
    assert CB_KEY not in message
    assert "WrongKey1" not in message
    assert CB_SIGNATURE not in message.lower()


@pytest.mark.parametrize(
    "timestamp",
    [
        "abc",
        "1700000000.0",
        "+1700000000",
        " 1700000000",
        "1_700_000_000",
        "\u0661\u0667" + "\u0660" * 8,
    ],
)
def test_callback_timestamp_must_be_ascii_digits(timestamp: str) -> None:
    # Correctly signed over the odd timestamp, so only the timestamp check can refuse it.
    signature = callback_signature(CB_URL, timestamp, CB_KEY)
    with pytest.raises(SignatureError, match="X-ICE-TIMESTAMP is not a UNIX time"):
        _callback(timestamp=timestamp, signature=signature)
