from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.ice_callback import IceCallback
from ...types import Response


def _get_kwargs(
    token: str,
    *,
    body: IceCallback,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/callbacks/ice/{token}".format(
            token=quote(str(token), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | str | None:
    if response.status_code == 200:
        response_200 = response.text
        return response_200

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

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
) -> Response[Error | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    token: str,
    *,
    client: AuthenticatedClient | Client,
    body: IceCallback,
) -> Response[Error | str]:
    """Where ICE posts a job's callbacks: stored, then answered 200.

     The token in the path is the credential (with X-ICE-SIGNATURE when AuthKeys are set).

    Args:
        token (str):
        body (IceCallback): An ICE event notification (``ProduceMediaComplete``,
            ``BatchProduceMediaComplete``).
            icehook keeps every body it receives and judges it afterwards; unknown event types are
            answered 200 and ignored, as ICE expects.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | str]
    """

    kwargs = _get_kwargs(
        token=token,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    token: str,
    *,
    client: AuthenticatedClient | Client,
    body: IceCallback,
) -> Error | str | None:
    """Where ICE posts a job's callbacks: stored, then answered 200.

     The token in the path is the credential (with X-ICE-SIGNATURE when AuthKeys are set).

    Args:
        token (str):
        body (IceCallback): An ICE event notification (``ProduceMediaComplete``,
            ``BatchProduceMediaComplete``).
            icehook keeps every body it receives and judges it afterwards; unknown event types are
            answered 200 and ignored, as ICE expects.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | str
    """

    return sync_detailed(
        token=token,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    token: str,
    *,
    client: AuthenticatedClient | Client,
    body: IceCallback,
) -> Response[Error | str]:
    """Where ICE posts a job's callbacks: stored, then answered 200.

     The token in the path is the credential (with X-ICE-SIGNATURE when AuthKeys are set).

    Args:
        token (str):
        body (IceCallback): An ICE event notification (``ProduceMediaComplete``,
            ``BatchProduceMediaComplete``).
            icehook keeps every body it receives and judges it afterwards; unknown event types are
            answered 200 and ignored, as ICE expects.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | str]
    """

    kwargs = _get_kwargs(
        token=token,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    token: str,
    *,
    client: AuthenticatedClient | Client,
    body: IceCallback,
) -> Error | str | None:
    """Where ICE posts a job's callbacks: stored, then answered 200.

     The token in the path is the credential (with X-ICE-SIGNATURE when AuthKeys are set).

    Args:
        token (str):
        body (IceCallback): An ICE event notification (``ProduceMediaComplete``,
            ``BatchProduceMediaComplete``).
            icehook keeps every body it receives and judges it afterwards; unknown event types are
            answered 200 and ignored, as ICE expects.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | str
    """

    return (
        await asyncio_detailed(
            token=token,
            client=client,
            body=body,
        )
    ).parsed
