from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.event_filter_in_user_data import EventFilterInUserData


T = TypeVar("T", bound="EventFilterIn")


@_attrs_define
class EventFilterIn:
    """Which jobs' events reach the subscription: every key given must match.

    Attributes:
        project_id (bool | float | int | list[bool | float | int | str] | str | Unset): a value, or a list meaning any
            of its values
        user_data (EventFilterInUserData | Unset): UserData KEY: VALUE; a number matches its text too (42 and '42')
    """

    project_id: bool | float | int | list[bool | float | int | str] | str | Unset = (
        UNSET
    )
    user_data: EventFilterInUserData | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        project_id: bool | float | int | list[bool | float | int | str] | str | Unset
        if isinstance(self.project_id, Unset):
            project_id = UNSET
        elif isinstance(self.project_id, list):
            project_id = []
            for project_id_type_0_item_data in self.project_id:
                project_id_type_0_item: bool | float | int | str
                project_id_type_0_item = project_id_type_0_item_data
                project_id.append(project_id_type_0_item)

        else:
            project_id = self.project_id

        user_data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.user_data, Unset):
            user_data = self.user_data.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if project_id is not UNSET:
            field_dict["project_id"] = project_id
        if user_data is not UNSET:
            field_dict["user_data"] = user_data

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.event_filter_in_user_data import EventFilterInUserData

        d = dict(src_dict)

        def _parse_project_id(
            data: object,
        ) -> bool | float | int | list[bool | float | int | str] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                project_id_type_0 = []
                _project_id_type_0 = data
                for project_id_type_0_item_data in _project_id_type_0:

                    def _parse_project_id_type_0_item(
                        data: object,
                    ) -> bool | float | int | str:
                        return cast(bool | float | int | str, data)

                    project_id_type_0_item = _parse_project_id_type_0_item(
                        project_id_type_0_item_data
                    )

                    project_id_type_0.append(project_id_type_0_item)

                return project_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                bool | float | int | list[bool | float | int | str] | str | Unset, data
            )

        project_id = _parse_project_id(d.pop("project_id", UNSET))

        _user_data = d.pop("user_data", UNSET)
        user_data: EventFilterInUserData | Unset
        if isinstance(_user_data, Unset):
            user_data = UNSET
        else:
            user_data = EventFilterInUserData.from_dict(_user_data)

        event_filter_in = cls(
            project_id=project_id,
            user_data=user_data,
        )

        return event_filter_in
