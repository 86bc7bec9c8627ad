from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Purged")


@_attrs_define
class Purged:
    """What retention has removed of a job (ICEHOOK_RETENTION): each is null while nothing
    of the job can have been removed, or the time before which its records are gone (a
    callback by when it was received, a webhook, with its deliveries and their attempts, by
    when its event was recorded).

        Attributes:
            callbacks_before (datetime.datetime | None):
            webhooks_before (datetime.datetime | None):
    """

    callbacks_before: datetime.datetime | None
    webhooks_before: datetime.datetime | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        callbacks_before: None | str
        if isinstance(self.callbacks_before, datetime.datetime):
            callbacks_before = self.callbacks_before.isoformat()
        else:
            callbacks_before = self.callbacks_before

        webhooks_before: None | str
        if isinstance(self.webhooks_before, datetime.datetime):
            webhooks_before = self.webhooks_before.isoformat()
        else:
            webhooks_before = self.webhooks_before

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "callbacks_before": callbacks_before,
                "webhooks_before": webhooks_before,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_callbacks_before(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                callbacks_before_type_0 = datetime.datetime.fromisoformat(data)

                return callbacks_before_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        callbacks_before = _parse_callbacks_before(d.pop("callbacks_before"))

        def _parse_webhooks_before(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                webhooks_before_type_0 = datetime.datetime.fromisoformat(data)

                return webhooks_before_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        webhooks_before = _parse_webhooks_before(d.pop("webhooks_before"))

        purged = cls(
            callbacks_before=callbacks_before,
            webhooks_before=webhooks_before,
        )

        purged.additional_properties = d
        return purged

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
