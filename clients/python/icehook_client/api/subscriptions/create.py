from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.created_subscription import CreatedSubscription
from ...models.error import Error
from ...models.new_subscription import NewSubscription
from ...types import Response


def _get_kwargs(
    *,
    body: NewSubscription,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/subscriptions",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> CreatedSubscription | Error | None:
    if response.status_code == 201:
        response_201 = CreatedSubscription.from_dict(response.json())

        return response_201

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Error.from_dict(response.json())

        return response_403

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
) -> Response[CreatedSubscription | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: NewSubscription,
) -> Response[CreatedSubscription | Error]:
    """201 with the subscription; a ``v1`` one with its ``secret``, never shown again.

     A ``v1a`` one's ``public_key`` verifies it; its secret key is never shown.

    Role: `admin`.

    Args:
        body (NewSubscription): ``POST /v1/subscriptions``.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedSubscription | Error]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: NewSubscription,
) -> CreatedSubscription | Error | None:
    """201 with the subscription; a ``v1`` one with its ``secret``, never shown again.

     A ``v1a`` one's ``public_key`` verifies it; its secret key is never shown.

    Role: `admin`.

    Args:
        body (NewSubscription): ``POST /v1/subscriptions``.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedSubscription | Error
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: NewSubscription,
) -> Response[CreatedSubscription | Error]:
    """201 with the subscription; a ``v1`` one with its ``secret``, never shown again.

     A ``v1a`` one's ``public_key`` verifies it; its secret key is never shown.

    Role: `admin`.

    Args:
        body (NewSubscription): ``POST /v1/subscriptions``.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedSubscription | Error]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: NewSubscription,
) -> CreatedSubscription | Error | None:
    """201 with the subscription; a ``v1`` one with its ``secret``, never shown again.

     A ``v1a`` one's ``public_key`` verifies it; its secret key is never shown.

    Role: `admin`.

    Args:
        body (NewSubscription): ``POST /v1/subscriptions``.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedSubscription | Error
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
