from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.recovered import Recovered
from ...models.replay import Replay
from ...types import Response


def _get_kwargs(
    id: UUID,
    *,
    body: Replay,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/subscriptions/{id}/recover".format(
            id=quote(str(id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | Recovered | None:
    if response.status_code == 202:
        response_202 = Recovered.from_dict(response.json())

        return response_202

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
) -> Response[Error | Recovered]:
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
    body: Replay,
) -> Response[Error | Recovered]:
    """Send the subscription again only what it was meant to receive in a period (by

     when each event was recorded, from when the subscription existed) and has not been
    delivered: pending, dead, or never queued while it was disabled. Delivered events
    are not sent again (``replay`` sends every one). 202: they are queued.

    Role: `admin`.

    Args:
        id (UUID):
        body (Replay): The period whose recorded events are sent again (``until`` open: up to
            now).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | Recovered]
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
    body: Replay,
) -> Error | Recovered | None:
    """Send the subscription again only what it was meant to receive in a period (by

     when each event was recorded, from when the subscription existed) and has not been
    delivered: pending, dead, or never queued while it was disabled. Delivered events
    are not sent again (``replay`` sends every one). 202: they are queued.

    Role: `admin`.

    Args:
        id (UUID):
        body (Replay): The period whose recorded events are sent again (``until`` open: up to
            now).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | Recovered
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
    body: Replay,
) -> Response[Error | Recovered]:
    """Send the subscription again only what it was meant to receive in a period (by

     when each event was recorded, from when the subscription existed) and has not been
    delivered: pending, dead, or never queued while it was disabled. Delivered events
    are not sent again (``replay`` sends every one). 202: they are queued.

    Role: `admin`.

    Args:
        id (UUID):
        body (Replay): The period whose recorded events are sent again (``until`` open: up to
            now).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | Recovered]
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
    body: Replay,
) -> Error | Recovered | None:
    """Send the subscription again only what it was meant to receive in a period (by

     when each event was recorded, from when the subscription existed) and has not been
    delivered: pending, dead, or never queued while it was disabled. Delivered events
    are not sent again (``replay`` sends every one). 202: they are queued.

    Role: `admin`.

    Args:
        id (UUID):
        body (Replay): The period whose recorded events are sent again (``until`` open: up to
            now).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | Recovered
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            body=body,
        )
    ).parsed
