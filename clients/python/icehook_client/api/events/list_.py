from http import HTTPStatus
from typing import Any
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.event_page import EventPage
from ...models.list_type_item import ListTypeItem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    type_: list[ListTypeItem] | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    json_type_: list[str] | Unset = UNSET
    if not isinstance(type_, Unset):
        json_type_ = []
        for type_item_data in type_:
            type_item = type_item_data.value
            json_type_.append(type_item)

    params["type"] = json_type_

    json_job_id: str | Unset = UNSET
    if not isinstance(job_id, Unset):
        json_job_id = str(job_id)
    params["job_id"] = json_job_id

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/events",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | EventPage | None:
    if response.status_code == 200:
        response_200 = EventPage.from_dict(response.json())

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
) -> Response[Error | EventPage]:
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
    type_: list[ListTypeItem] | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
) -> Response[Error | EventPage]:
    """Every recorded event, oldest first, a page at a time: pull instead of push.

     Each is the body its webhooks carry (type, timestamp, data) with their webhook-id as
    its id, whether or not any subscription wanted it. Read on from next_cursor, which
    every page gives (an empty page: nothing newer yet, ask again later with the same
    cursor); events that arrive meanwhile come after it, so none is missed. An event
    recorded just after one whose transaction failed may wait up to a minute to be
    listed. Events are kept for ICEHOOK_RETENTION (purged with their deliveries), so
    read on within that time.

    Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        type_ (list[ListTypeItem] | Unset):
        job_id (UUID | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | EventPage]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        type_=type_,
        job_id=job_id,
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
    type_: list[ListTypeItem] | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
) -> Error | EventPage | None:
    """Every recorded event, oldest first, a page at a time: pull instead of push.

     Each is the body its webhooks carry (type, timestamp, data) with their webhook-id as
    its id, whether or not any subscription wanted it. Read on from next_cursor, which
    every page gives (an empty page: nothing newer yet, ask again later with the same
    cursor); events that arrive meanwhile come after it, so none is missed. An event
    recorded just after one whose transaction failed may wait up to a minute to be
    listed. Events are kept for ICEHOOK_RETENTION (purged with their deliveries), so
    read on within that time.

    Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        type_ (list[ListTypeItem] | Unset):
        job_id (UUID | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | EventPage
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
        type_=type_,
        job_id=job_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    type_: list[ListTypeItem] | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
) -> Response[Error | EventPage]:
    """Every recorded event, oldest first, a page at a time: pull instead of push.

     Each is the body its webhooks carry (type, timestamp, data) with their webhook-id as
    its id, whether or not any subscription wanted it. Read on from next_cursor, which
    every page gives (an empty page: nothing newer yet, ask again later with the same
    cursor); events that arrive meanwhile come after it, so none is missed. An event
    recorded just after one whose transaction failed may wait up to a minute to be
    listed. Events are kept for ICEHOOK_RETENTION (purged with their deliveries), so
    read on within that time.

    Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        type_ (list[ListTypeItem] | Unset):
        job_id (UUID | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | EventPage]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        type_=type_,
        job_id=job_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    type_: list[ListTypeItem] | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
) -> Error | EventPage | None:
    """Every recorded event, oldest first, a page at a time: pull instead of push.

     Each is the body its webhooks carry (type, timestamp, data) with their webhook-id as
    its id, whether or not any subscription wanted it. Read on from next_cursor, which
    every page gives (an empty page: nothing newer yet, ask again later with the same
    cursor); events that arrive meanwhile come after it, so none is missed. An event
    recorded just after one whose transaction failed may wait up to a minute to be
    listed. Events are kept for ICEHOOK_RETENTION (purged with their deliveries), so
    read on within that time.

    Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        type_ (list[ListTypeItem] | Unset):
        job_id (UUID | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | EventPage
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
            type_=type_,
            job_id=job_id,
        )
    ).parsed
