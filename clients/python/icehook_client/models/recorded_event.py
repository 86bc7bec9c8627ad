from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.recorded_event_type import RecordedEventType

if TYPE_CHECKING:
    from ..models.job import Job
    from ..models.subscription_notice import SubscriptionNotice


T = TypeVar("T", bound="RecordedEvent")


@_attrs_define
class RecordedEvent:
    """An event as recorded: the body its webhooks carry, and their ``webhook-id``.

    Attributes:
        data (Job | SubscriptionNotice): the job; for a subscription.* event, the subscription
        id (str): msg_...: the webhook-id of its webhooks
        timestamp (datetime.datetime):
        type_ (RecordedEventType):
    """

    data: Job | SubscriptionNotice
    id: str
    timestamp: datetime.datetime
    type_: RecordedEventType
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job import Job

        data: dict[str, Any]
        if isinstance(self.data, Job):
            data = self.data.to_dict()
        else:
            data = self.data.to_dict()

        id = self.id

        timestamp = self.timestamp.isoformat()

        type_ = self.type_.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "data": data,
                "id": id,
                "timestamp": timestamp,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job import Job
        from ..models.subscription_notice import SubscriptionNotice

        d = dict(src_dict)

        def _parse_data(data: object) -> Job | SubscriptionNotice:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                data_type_0 = Job.from_dict(data)

                return data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            data_type_1 = SubscriptionNotice.from_dict(data)

            return data_type_1

        data = _parse_data(d.pop("data"))

        id = d.pop("id")

        timestamp = datetime.datetime.fromisoformat(d.pop("timestamp"))

        type_ = RecordedEventType(d.pop("type"))

        recorded_event = cls(
            data=data,
            id=id,
            timestamp=timestamp,
            type_=type_,
        )

        recorded_event.additional_properties = d
        return recorded_event

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
