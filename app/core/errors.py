"""The one error tree of icehook.

::

    IcehookError                     anything icehook raises on purpose
    ├── ConfigError                  a setting is wrong; the program stops at start (exit 2)
    ├── ApiError                     answered to an HTTP client as {"error": {code, message}}
    │   ├── BadRequest          400
    │   ├── Forbidden           403  the API key's role does not allow it
    │   ├── NotFound            404
    │   ├── Conflict            409
    │   ├── PayloadTooLarge     413
    │   ├── ValidationError     422  names the field that is wrong
    │   ├── IceRefused          422  ICE refused a submission; carries ICE's Code and Message
    │   └── Unavailable         503  the database cannot do it now
    ├── SignatureError               a signature is missing, malformed, stale or does not verify
    └── IceError                     ICE answered with an error, or could not be reached
        └── IceJobNotFound           ICE does not know the job (JobNotFound, or a malformed JobId)

Errors from outside (httpx, asyncpg, ICE error bodies, signature parsing) are turned into
one of these in the module that meets them. The database's own errors stay SQLAlchemy's:
``store.unavailable`` says which of them mean "not now", and ``http.errors`` answers those
with 503 and ``Retry-After``.
"""

from __future__ import annotations

from typing import ClassVar


class IcehookError(Exception):
    """Base of every error icehook raises on purpose."""


class ConfigError(IcehookError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class ApiError(IcehookError):
    """An error answered to an HTTP client."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details  # extra keys of the error object, e.g. the field at fault


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ValidationError(ApiError):
    status = 422
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class Unavailable(ApiError):
    status = 503
    code = "unavailable"


class IceRefused(ApiError):
    """ICE refused a submission (the job is kept, as ``rejected``)."""

    status = 422
    code = "ice_rejected"


class SignatureError(IcehookError):
    """A request or callback signature is missing, malformed, expired or wrong."""


class IceError(IcehookError):
    """ICE refused a call, or could not be reached (then ``status`` is 0 and ``code`` says why)."""

    def __init__(
        self, status: int, code: str, message: str, request_id: str = "", retry_after: float = 0.0
    ) -> None:
        super().__init__(f"ICE {code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after


class IceJobNotFound(IceError):
    """ICE has no such job."""


def error_body(code: str, message: str, **details: object) -> dict[str, dict[str, object]]:
    return {"error": {"code": code, "message": message, **details}}
