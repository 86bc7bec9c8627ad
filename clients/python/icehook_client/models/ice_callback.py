from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.ice_callback_messagebody import IceCallbackMessagebody


T = TypeVar("T", bound="IceCallback")


@_attrs_define
class IceCallback:
    """An ICE event notification (``ProduceMediaComplete``, ``BatchProduceMediaComplete``).
    icehook keeps every body it receives and judges it afterwards; unknown event types are
    answered 200 and ignored, as ICE expects.

        Attributes:
            event_time (str | Unset):
            event_type (str | Unset):
            message_body (IceCallbackMessagebody | Unset): JobId, Status, UserData (with the NotifyAddress)...
            user_id (int | str | Unset):
    """

    event_time: str | Unset = UNSET
    event_type: str | Unset = UNSET
    message_body: IceCallbackMessagebody | Unset = UNSET
    user_id: int | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        event_time = self.event_time

        event_type = self.event_type

        message_body: dict[str, Any] | Unset = UNSET
        if not isinstance(self.message_body, Unset):
            message_body = self.message_body.to_dict()

        user_id: int | str | Unset
        if isinstance(self.user_id, Unset):
            user_id = UNSET
        else:
            user_id = self.user_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if event_time is not UNSET:
            field_dict["EventTime"] = event_time
        if event_type is not UNSET:
            field_dict["EventType"] = event_type
        if message_body is not UNSET:
            field_dict["MessageBody"] = message_body
        if user_id is not UNSET:
            field_dict["UserId"] = user_id

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.ice_callback_messagebody import IceCallbackMessagebody

        d = dict(src_dict)
        event_time = d.pop("EventTime", UNSET)

        event_type = d.pop("EventType", UNSET)

        _message_body = d.pop("MessageBody", UNSET)
        message_body: IceCallbackMessagebody | Unset
        if isinstance(_message_body, Unset):
            message_body = UNSET
        else:
            message_body = IceCallbackMessagebody.from_dict(_message_body)

        def _parse_user_id(data: object) -> int | str | Unset:
            if isinstance(data, Unset):
                return data
            return cast(int | str | Unset, data)

        user_id = _parse_user_id(d.pop("UserId", UNSET))

        ice_callback = cls(
            event_time=event_time,
            event_type=event_type,
            message_body=message_body,
            user_id=user_id,
        )

        ice_callback.additional_properties = d
        return ice_callback

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
