from http import HTTPStatus
from typing import Any
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.delivery_page import DeliveryPage
from ...models.delivery_status import DeliveryStatus
from ...models.error import Error
from ...models.list_event_type import ListEventType
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    status: DeliveryStatus | Unset = UNSET,
    subscription_id: UUID | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    event_type: ListEventType | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    json_status: str | Unset = UNSET
    if not isinstance(status, Unset):
        json_status = status.value

    params["status"] = json_status

    json_subscription_id: str | Unset = UNSET
    if not isinstance(subscription_id, Unset):
        json_subscription_id = str(subscription_id)
    params["subscription_id"] = json_subscription_id

    json_job_id: str | Unset = UNSET
    if not isinstance(job_id, Unset):
        json_job_id = str(job_id)
    params["job_id"] = json_job_id

    json_event_type: str | Unset = UNSET
    if not isinstance(event_type, Unset):
        json_event_type = event_type.value

    params["event_type"] = json_event_type

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/deliveries",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> DeliveryPage | Error | None:
    if response.status_code == 200:
        response_200 = DeliveryPage.from_dict(response.json())

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
) -> Response[DeliveryPage | Error]:
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
    status: DeliveryStatus | Unset = UNSET,
    subscription_id: UUID | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    event_type: ListEventType | Unset = UNSET,
) -> Response[DeliveryPage | Error]:
    """Webhook deliveries, newest first, a page at a time.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        status (DeliveryStatus | Unset):
        subscription_id (UUID | Unset):
        job_id (UUID | Unset):
        event_type (ListEventType | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeliveryPage | Error]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        status=status,
        subscription_id=subscription_id,
        job_id=job_id,
        event_type=event_type,
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
    status: DeliveryStatus | Unset = UNSET,
    subscription_id: UUID | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    event_type: ListEventType | Unset = UNSET,
) -> DeliveryPage | Error | None:
    """Webhook deliveries, newest first, a page at a time.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        status (DeliveryStatus | Unset):
        subscription_id (UUID | Unset):
        job_id (UUID | Unset):
        event_type (ListEventType | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeliveryPage | Error
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
        status=status,
        subscription_id=subscription_id,
        job_id=job_id,
        event_type=event_type,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    status: DeliveryStatus | Unset = UNSET,
    subscription_id: UUID | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    event_type: ListEventType | Unset = UNSET,
) -> Response[DeliveryPage | Error]:
    """Webhook deliveries, newest first, a page at a time.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        status (DeliveryStatus | Unset):
        subscription_id (UUID | Unset):
        job_id (UUID | Unset):
        event_type (ListEventType | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeliveryPage | Error]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        status=status,
        subscription_id=subscription_id,
        job_id=job_id,
        event_type=event_type,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    status: DeliveryStatus | Unset = UNSET,
    subscription_id: UUID | Unset = UNSET,
    job_id: UUID | Unset = UNSET,
    event_type: ListEventType | Unset = UNSET,
) -> DeliveryPage | Error | None:
    """Webhook deliveries, newest first, a page at a time.

     Role: `read` or `admin`.

    Args:
        limit (int | Unset):
        cursor (str | Unset):
        status (DeliveryStatus | Unset):
        subscription_id (UUID | Unset):
        job_id (UUID | Unset):
        event_type (ListEventType | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeliveryPage | Error
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
            status=status,
            subscription_id=subscription_id,
            job_id=job_id,
            event_type=event_type,
        )
    ).parsed
