from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.new_subscription_event_types_item import NewSubscriptionEventTypesItem
from ..models.new_subscription_signature_scheme import NewSubscriptionSignatureScheme
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.event_filter_in import EventFilterIn
    from ..models.new_subscription_headers_type_0 import NewSubscriptionHeadersType0


T = TypeVar("T", bound="NewSubscription")


@_attrs_define
class NewSubscription:
    """``POST /v1/subscriptions``.

    Attributes:
        event_types (list[NewSubscriptionEventTypesItem]):
        url (str): http:// or https://, without credentials or #fragment
        description (str | Unset):
        enabled (bool | Unset):
        filter_ (EventFilterIn | None | Unset): only the events of jobs it lets through; null or {}: every one
        headers (NewSubscriptionHeadersType0 | None | Unset): static headers sent with each webhook (e.g. a gateway's
            token); write-only: shown masked; cannot replace webhook-*, host, content-* and the like
        max_in_flight (int | Unset): its requests at once, all workers
        max_per_second (float | None | Unset): its requests a second (0.01: one every 100 s); null: no limit
        signature_scheme (NewSubscriptionSignatureScheme | Unset): v1: HMAC-SHA256 with a whsec_ secret; v1a: ed25519,
            see public_key
    """

    event_types: list[NewSubscriptionEventTypesItem]
    url: str
    description: str | Unset = UNSET
    enabled: bool | Unset = UNSET
    filter_: EventFilterIn | None | Unset = UNSET
    headers: NewSubscriptionHeadersType0 | None | Unset = UNSET
    max_in_flight: int | Unset = UNSET
    max_per_second: float | None | Unset = UNSET
    signature_scheme: NewSubscriptionSignatureScheme | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.event_filter_in import EventFilterIn
        from ..models.new_subscription_headers_type_0 import NewSubscriptionHeadersType0

        event_types = []
        for event_types_item_data in self.event_types:
            event_types_item = event_types_item_data.value
            event_types.append(event_types_item)

        url = self.url

        description = self.description

        enabled = self.enabled

        filter_: dict[str, Any] | None | Unset
        if isinstance(self.filter_, Unset):
            filter_ = UNSET
        elif isinstance(self.filter_, EventFilterIn):
            filter_ = self.filter_.to_dict()
        else:
            filter_ = self.filter_

        headers: dict[str, Any] | None | Unset
        if isinstance(self.headers, Unset):
            headers = UNSET
        elif isinstance(self.headers, NewSubscriptionHeadersType0):
            headers = self.headers.to_dict()
        else:
            headers = self.headers

        max_in_flight = self.max_in_flight

        max_per_second: float | None | Unset
        if isinstance(self.max_per_second, Unset):
            max_per_second = UNSET
        else:
            max_per_second = self.max_per_second

        signature_scheme: str | Unset = UNSET
        if not isinstance(self.signature_scheme, Unset):
            signature_scheme = self.signature_scheme.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "event_types": event_types,
                "url": url,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description
        if enabled is not UNSET:
            field_dict["enabled"] = enabled
        if filter_ is not UNSET:
            field_dict["filter"] = filter_
        if headers is not UNSET:
            field_dict["headers"] = headers
        if max_in_flight is not UNSET:
            field_dict["max_in_flight"] = max_in_flight
        if max_per_second is not UNSET:
            field_dict["max_per_second"] = max_per_second
        if signature_scheme is not UNSET:
            field_dict["signature_scheme"] = signature_scheme

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.event_filter_in import EventFilterIn
        from ..models.new_subscription_headers_type_0 import NewSubscriptionHeadersType0

        d = dict(src_dict)
        event_types = []
        _event_types = d.pop("event_types")
        for event_types_item_data in _event_types:
            event_types_item = NewSubscriptionEventTypesItem(event_types_item_data)

            event_types.append(event_types_item)

        url = d.pop("url")

        description = d.pop("description", UNSET)

        enabled = d.pop("enabled", UNSET)

        def _parse_filter_(data: object) -> EventFilterIn | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                filter_type_0 = EventFilterIn.from_dict(data)

                return filter_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EventFilterIn | None | Unset, data)

        filter_ = _parse_filter_(d.pop("filter", UNSET))

        def _parse_headers(data: object) -> NewSubscriptionHeadersType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                headers_type_0 = NewSubscriptionHeadersType0.from_dict(data)

                return headers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(NewSubscriptionHeadersType0 | None | Unset, data)

        headers = _parse_headers(d.pop("headers", UNSET))

        max_in_flight = d.pop("max_in_flight", UNSET)

        def _parse_max_per_second(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_per_second = _parse_max_per_second(d.pop("max_per_second", UNSET))

        _signature_scheme = d.pop("signature_scheme", UNSET)
        signature_scheme: NewSubscriptionSignatureScheme | Unset
        if isinstance(_signature_scheme, Unset):
            signature_scheme = UNSET
        else:
            signature_scheme = NewSubscriptionSignatureScheme(_signature_scheme)

        new_subscription = cls(
            event_types=event_types,
            url=url,
            description=description,
            enabled=enabled,
            filter_=filter_,
            headers=headers,
            max_in_flight=max_in_flight,
            max_per_second=max_per_second,
            signature_scheme=signature_scheme,
        )

        return new_subscription
