from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.subscription import Subscription
from ...models.subscription_change import SubscriptionChange
from ...types import Response


def _get_kwargs(
    id: UUID,
    *,
    body: SubscriptionChange,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/v1/subscriptions/{id}".format(
            id=quote(str(id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | Subscription | None:
    if response.status_code == 200:
        response_200 = Subscription.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Error.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Error.from_dict(response.json())

        return response_404

    if response.status_code == 413:
        response_413 = Error.from_dict(response.json())

        return response_413

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
) -> Response[Error | Subscription]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: SubscriptionChange,
) -> Response[Error | Subscription]:
    """Change what is given (``headers`` and ``filter`` are replaced whole; null removes

     them). Disabling queues its new events for it for a while
    (``ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS``); enabling a disabled subscription clears
    why it was disabled and sends what was queued. Either is announced to the
    subscriptions that want ``subscription.disabled``/``subscription.enabled``.

    Role: `admin`.

    Args:
        id (UUID):
        body (SubscriptionChange): ``PATCH /v1/subscriptions/{id}``: any of the fields.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | Subscription]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: SubscriptionChange,
) -> Error | Subscription | None:
    """Change what is given (``headers`` and ``filter`` are replaced whole; null removes

     them). Disabling queues its new events for it for a while
    (``ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS``); enabling a disabled subscription clears
    why it was disabled and sends what was queued. Either is announced to the
    subscriptions that want ``subscription.disabled``/``subscription.enabled``.

    Role: `admin`.

    Args:
        id (UUID):
        body (SubscriptionChange): ``PATCH /v1/subscriptions/{id}``: any of the fields.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | Subscription
    """

    return sync_detailed(
        id=id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: SubscriptionChange,
) -> Response[Error | Subscription]:
    """Change what is given (``headers`` and ``filter`` are replaced whole; null removes

     them). Disabling queues its new events for it for a while
    (``ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS``); enabling a disabled subscription clears
    why it was disabled and sends what was queued. Either is announced to the
    subscriptions that want ``subscription.disabled``/``subscription.enabled``.

    Role: `admin`.

    Args:
        id (UUID):
        body (SubscriptionChange): ``PATCH /v1/subscriptions/{id}``: any of the fields.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | Subscription]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: SubscriptionChange,
) -> Error | Subscription | None:
    """Change what is given (``headers`` and ``filter`` are replaced whole; null removes

     them). Disabling queues its new events for it for a while
    (``ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS``); enabling a disabled subscription clears
    why it was disabled and sends what was queued. Either is announced to the
    subscriptions that want ``subscription.disabled``/``subscription.enabled``.

    Role: `admin`.

    Args:
        id (UUID):
        body (SubscriptionChange): ``PATCH /v1/subscriptions/{id}``: any of the fields.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | Subscription
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            body=body,
        )
    ).parsed
