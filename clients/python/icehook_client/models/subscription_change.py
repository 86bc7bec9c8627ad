from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.subscription_change_event_types_item import (
    SubscriptionChangeEventTypesItem,
)
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.event_filter_in import EventFilterIn
    from ..models.subscription_change_headers_type_0 import (
        SubscriptionChangeHeadersType0,
    )


T = TypeVar("T", bound="SubscriptionChange")


@_attrs_define
class SubscriptionChange:
    """``PATCH /v1/subscriptions/{id}``: any of the fields.

    Attributes:
        description (str | Unset):
        enabled (bool | Unset):
        event_types (list[SubscriptionChangeEventTypesItem] | Unset):
        filter_ (EventFilterIn | None | Unset): only the events of jobs it lets through; null or {}: every one
        headers (None | SubscriptionChangeHeadersType0 | Unset): static headers sent with each webhook (e.g. a gateway's
            token); write-only: shown masked; cannot replace webhook-*, host, content-* and the like
        max_in_flight (int | Unset): its requests at once, all workers
        max_per_second (float | None | Unset): its requests a second (0.01: one every 100 s); null: no limit
        url (str | Unset): http:// or https://, without credentials or #fragment
    """

    description: str | Unset = UNSET
    enabled: bool | Unset = UNSET
    event_types: list[SubscriptionChangeEventTypesItem] | Unset = UNSET
    filter_: EventFilterIn | None | Unset = UNSET
    headers: None | SubscriptionChangeHeadersType0 | Unset = UNSET
    max_in_flight: int | Unset = UNSET
    max_per_second: float | None | Unset = UNSET
    url: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.event_filter_in import EventFilterIn
        from ..models.subscription_change_headers_type_0 import (
            SubscriptionChangeHeadersType0,
        )

        description = self.description

        enabled = self.enabled

        event_types: list[str] | Unset = UNSET
        if not isinstance(self.event_types, Unset):
            event_types = []
            for event_types_item_data in self.event_types:
                event_types_item = event_types_item_data.value
                event_types.append(event_types_item)

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
        elif isinstance(self.headers, SubscriptionChangeHeadersType0):
            headers = self.headers.to_dict()
        else:
            headers = self.headers

        max_in_flight = self.max_in_flight

        max_per_second: float | None | Unset
        if isinstance(self.max_per_second, Unset):
            max_per_second = UNSET
        else:
            max_per_second = self.max_per_second

        url = self.url

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if description is not UNSET:
            field_dict["description"] = description
        if enabled is not UNSET:
            field_dict["enabled"] = enabled
        if event_types is not UNSET:
            field_dict["event_types"] = event_types
        if filter_ is not UNSET:
            field_dict["filter"] = filter_
        if headers is not UNSET:
            field_dict["headers"] = headers
        if max_in_flight is not UNSET:
            field_dict["max_in_flight"] = max_in_flight
        if max_per_second is not UNSET:
            field_dict["max_per_second"] = max_per_second
        if url is not UNSET:
            field_dict["url"] = url

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.event_filter_in import EventFilterIn
        from ..models.subscription_change_headers_type_0 import (
            SubscriptionChangeHeadersType0,
        )

        d = dict(src_dict)
        description = d.pop("description", UNSET)

        enabled = d.pop("enabled", UNSET)

        _event_types = d.pop("event_types", UNSET)
        event_types: list[SubscriptionChangeEventTypesItem] | Unset = UNSET
        if _event_types is not UNSET:
            event_types = []
            for event_types_item_data in _event_types:
                event_types_item = SubscriptionChangeEventTypesItem(
                    event_types_item_data
                )

                event_types.append(event_types_item)

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

        def _parse_headers(
            data: object,
        ) -> None | SubscriptionChangeHeadersType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                headers_type_0 = SubscriptionChangeHeadersType0.from_dict(data)

                return headers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubscriptionChangeHeadersType0 | Unset, data)

        headers = _parse_headers(d.pop("headers", UNSET))

        max_in_flight = d.pop("max_in_flight", UNSET)

        def _parse_max_per_second(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_per_second = _parse_max_per_second(d.pop("max_per_second", UNSET))

        url = d.pop("url", UNSET)

        subscription_change = cls(
            description=description,
            enabled=enabled,
            event_types=event_types,
            filter_=filter_,
            headers=headers,
            max_in_flight=max_in_flight,
            max_per_second=max_per_second,
            url=url,
        )

        return subscription_change
