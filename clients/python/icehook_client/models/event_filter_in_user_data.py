from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="EventFilterInUserData")


@_attrs_define
class EventFilterInUserData:
    """UserData KEY: VALUE; a number matches its text too (42 and '42')"""

    additional_properties: dict[
        str, bool | float | int | list[bool | float | int | str] | str
    ] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:

        field_dict: dict[str, Any] = {}
        for prop_name, prop in self.additional_properties.items():
            if isinstance(prop, list):
                field_dict[prop_name] = []
                for additional_property_type_0_item_data in prop:
                    additional_property_type_0_item: bool | float | int | str
                    additional_property_type_0_item = (
                        additional_property_type_0_item_data
                    )
                    field_dict[prop_name].append(additional_property_type_0_item)

            else:
                field_dict[prop_name] = prop

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        event_filter_in_user_data = cls()

        additional_properties = {}
        for prop_name, prop_dict in d.items():

            def _parse_additional_property(
                data: object,
            ) -> bool | float | int | list[bool | float | int | str] | str:
                try:
                    if not isinstance(data, list):
                        raise TypeError()
                    additional_property_type_0 = []
                    _additional_property_type_0 = data
                    for (
                        additional_property_type_0_item_data
                    ) in _additional_property_type_0:

                        def _parse_additional_property_type_0_item(
                            data: object,
                        ) -> bool | float | int | str:
                            return cast(bool | float | int | str, data)

                        additional_property_type_0_item = (
                            _parse_additional_property_type_0_item(
                                additional_property_type_0_item_data
                            )
                        )

                        additional_property_type_0.append(
                            additional_property_type_0_item
                        )

                    return additional_property_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                return cast(
                    bool | float | int | list[bool | float | int | str] | str, data
                )

            additional_property = _parse_additional_property(prop_dict)

            additional_properties[prop_name] = additional_property

        event_filter_in_user_data.additional_properties = additional_properties
        return event_filter_in_user_data

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(
        self, key: str
    ) -> bool | float | int | list[bool | float | int | str] | str:
        return self.additional_properties[key]

    def __setitem__(
        self, key: str, value: bool | float | list[bool | float | int | str] | str
    ) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
