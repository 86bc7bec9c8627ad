import datetime
from http import HTTPStatus
from typing import Any
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.callback_outcome import CallbackOutcome
from ...models.callback_page import CallbackPage
from ...models.error import Error
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    outcome: CallbackOutcome | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    received_after: datetime.datetime | Unset = UNSET,
    received_before: datetime.datetime | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    json_outcome: str | Unset = UNSET
    if not isinstance(outcome, Unset):
        json_outcome = outcome.value

    params["outcome"] = json_outcome

    json_job_id: str | Unset = UNSET
    if not isinstance(job_id, Unset):
        json_job_id = str(job_id)
    params["job_id"] = json_job_id

    json_received_after: str | Unset = UNSET
    if not isinstance(received_after, Unset):
        json_received_after = received_after.isoformat()
    params["received_after"] = json_received_after

    json_received_before: str | Unset = UNSET
    if not isinstance(received_before, Unset):
        json_received_before = received_before.isoformat()
    params["received_before"] = json_received_before

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/callbacks",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> CallbackPage | Error | None:
    if response.status_code == 200:
        response_200 = CallbackPage.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Error.from_dict(response.json())

        return response_403

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if response.status_code == 503:
        response_503 = Error.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[CallbackPage | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    outcome: CallbackOutcome | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    received_after: datetime.datetime | Unset = UNSET,
    received_before: datetime.datetime | Unset = UNSET,
) -> Response[CallbackPage | Error]:
    """Every received callback, rejected and unmatched ones too; newest first.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        outcome (CallbackOutcome | Unset):
        job_id (UUID | Unset):
        received_after (datetime.datetime | Unset):
        received_before (datetime.datetime | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CallbackPage | Error]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        outcome=outcome,
        job_id=job_id,
        received_after=received_after,
        received_before=received_before,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    outcome: CallbackOutcome | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    received_after: datetime.datetime | Unset = UNSET,
    received_before: datetime.datetime | Unset = UNSET,
) -> CallbackPage | Error | None:
    """Every received callback, rejected and unmatched ones too; newest first.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        outcome (CallbackOutcome | Unset):
        job_id (UUID | Unset):
        received_after (datetime.datetime | Unset):
        received_before (datetime.datetime | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CallbackPage | Error
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
        outcome=outcome,
        job_id=job_id,
        received_after=received_after,
        received_before=received_before,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    outcome: CallbackOutcome | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    received_after: datetime.datetime | Unset = UNSET,
    received_before: datetime.datetime | Unset = UNSET,
) -> Response[CallbackPage | Error]:
    """Every received callback, rejected and unmatched ones too; newest first.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        outcome (CallbackOutcome | Unset):
        job_id (UUID | Unset):
        received_after (datetime.datetime | Unset):
        received_before (datetime.datetime | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CallbackPage | Error]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        outcome=outcome,
        job_id=job_id,
        received_after=received_after,
        received_before=received_before,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    outcome: CallbackOutcome | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    received_after: datetime.datetime | Unset = UNSET,
    received_before: datetime.datetime | Unset = UNSET,
) -> CallbackPage | Error | None:
    """Every received callback, rejected and unmatched ones too; newest first.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        outcome (CallbackOutcome | Unset):
        job_id (UUID | Unset):
        received_after (datetime.datetime | Unset):
        received_before (datetime.datetime | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CallbackPage | Error
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
            outcome=outcome,
            job_id=job_id,
            received_after=received_after,
            received_before=received_before,
        )
    ).parsed
