from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.new_subscription_event_types_item import NewSubscriptionEventTypesItem
from ..types import UNSET, Unset

T = TypeVar("T", bound="NewSubscription")


@_attrs_define
class NewSubscription:
    """``POST /v1/subscriptions``.

    Attributes:
        event_types (list[NewSubscriptionEventTypesItem]):
        url (str): http:// or https://, without credentials or #fragment
        description (str | Unset):
        enabled (bool | Unset):
    """

    event_types: list[NewSubscriptionEventTypesItem]
    url: str
    description: str | Unset = UNSET
    enabled: bool | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        event_types = []
        for event_types_item_data in self.event_types:
            event_types_item = event_types_item_data.value
            event_types.append(event_types_item)

        url = self.url

        description = self.description

        enabled = self.enabled

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

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        event_types = []
        _event_types = d.pop("event_types")
        for event_types_item_data in _event_types:
            event_types_item = NewSubscriptionEventTypesItem(event_types_item_data)

            event_types.append(event_types_item)

        url = d.pop("url")

        description = d.pop("description", UNSET)

        enabled = d.pop("enabled", UNSET)

        new_subscription = cls(
            event_types=event_types,
            url=url,
            description=description,
            enabled=enabled,
        )

        return new_subscription
