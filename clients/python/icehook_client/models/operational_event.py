from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.operational_event_type import OperationalEventType

if TYPE_CHECKING:
    from ..models.subscription_notice import SubscriptionNotice


T = TypeVar("T", bound="OperationalEvent")


@_attrs_define
class OperationalEvent:
    """What a subscriber that asks for ``subscription.disabled``/``subscription.enabled``
    (or ``subscription.*``) receives, signed and retried like job events.

        Attributes:
            data (SubscriptionNotice): What the subscription changed (of its URL only the host; its secrets and headers
                never shown).
            timestamp (datetime.datetime):
            type_ (OperationalEventType):
    """

    data: SubscriptionNotice
    timestamp: datetime.datetime
    type_: OperationalEventType
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = self.data.to_dict()

        timestamp = self.timestamp.isoformat()

        type_ = self.type_.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "data": data,
                "timestamp": timestamp,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.subscription_notice import SubscriptionNotice

        d = dict(src_dict)
        data = SubscriptionNotice.from_dict(d.pop("data"))

        timestamp = datetime.datetime.fromisoformat(d.pop("timestamp"))

        type_ = OperationalEventType(d.pop("type"))

        operational_event = cls(
            data=data,
            timestamp=timestamp,
            type_=type_,
        )

        operational_event.additional_properties = d
        return operational_event

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
