from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.event_filter_user_data import EventFilterUserData


T = TypeVar("T", bound="EventFilter")


@_attrs_define
class EventFilter:
    """A filter as kept: each value as text, in a list.

    Attributes:
        project_id (list[str] | Unset):
        user_data (EventFilterUserData | Unset):
    """

    project_id: list[str] | Unset = UNSET
    user_data: EventFilterUserData | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        project_id: list[str] | Unset = UNSET
        if not isinstance(self.project_id, Unset):
            project_id = self.project_id

        user_data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.user_data, Unset):
            user_data = self.user_data.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if project_id is not UNSET:
            field_dict["project_id"] = project_id
        if user_data is not UNSET:
            field_dict["user_data"] = user_data

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.event_filter_user_data import EventFilterUserData

        d = dict(src_dict)
        project_id = cast(list[str], d.pop("project_id", UNSET))

        _user_data = d.pop("user_data", UNSET)
        user_data: EventFilterUserData | Unset
        if isinstance(_user_data, Unset):
            user_data = UNSET
        else:
            user_data = EventFilterUserData.from_dict(_user_data)

        event_filter = cls(
            project_id=project_id,
            user_data=user_data,
        )

        event_filter.additional_properties = d
        return event_filter

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
