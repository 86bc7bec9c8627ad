from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.subscription_change_event_types_item import (
    SubscriptionChangeEventTypesItem,
)
from ..types import UNSET, Unset

T = TypeVar("T", bound="SubscriptionChange")


@_attrs_define
class SubscriptionChange:
    """``PATCH /v1/subscriptions/{id}``: any of the fields.

    Attributes:
        description (str | Unset):
        enabled (bool | Unset):
        event_types (list[SubscriptionChangeEventTypesItem] | Unset):
        url (str | Unset): http:// or https://, without credentials or #fragment
    """

    description: str | Unset = UNSET
    enabled: bool | Unset = UNSET
    event_types: list[SubscriptionChangeEventTypesItem] | Unset = UNSET
    url: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        description = self.description

        enabled = self.enabled

        event_types: list[str] | Unset = UNSET
        if not isinstance(self.event_types, Unset):
            event_types = []
            for event_types_item_data in self.event_types:
                event_types_item = event_types_item_data.value
                event_types.append(event_types_item)

        url = self.url

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if description is not UNSET:
            field_dict["description"] = description
        if enabled is not UNSET:
            field_dict["enabled"] = enabled
        if event_types is not UNSET:
            field_dict["event_types"] = event_types
        if url is not UNSET:
            field_dict["url"] = url

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
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

        url = d.pop("url", UNSET)

        subscription_change = cls(
            description=description,
            enabled=enabled,
            event_types=event_types,
            url=url,
        )

        return subscription_change
