"""The shape of every error answer."""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from app.http.contracts.jobs import Job


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[Annotated[str, Field(description="the parameter at fault")]]
    job: NotRequired[Annotated[Job, Field(description="the job ICE refused (kept, rejected)")]]
    ice_code: NotRequired[str]
    ice_message: NotRequired[str]
    ice_request_id: NotRequired[str]


class Error(TypedDict):
    """Every error: a code to branch on and a message for people."""

    error: ErrorDetail
