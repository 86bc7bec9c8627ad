from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.event_source import EventSource
from ..models.job_status import JobStatus

if TYPE_CHECKING:
    from ..models.event_payload_type_0 import EventPayloadType0


T = TypeVar("T", bound="Event")


@_attrs_define
class Event:
    """One observed change of a job's status.

    Attributes:
        created_at (datetime.datetime):
        from_status (JobStatus | None):
        id (int):
        payload (EventPayloadType0 | None): the ICE answer that caused it
        source (EventSource):
        to_status (JobStatus):
    """

    created_at: datetime.datetime
    from_status: JobStatus | None
    id: int
    payload: EventPayloadType0 | None
    source: EventSource
    to_status: JobStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.event_payload_type_0 import EventPayloadType0

        created_at = self.created_at.isoformat()

        from_status: None | str
        if isinstance(self.from_status, JobStatus):
            from_status = self.from_status.value
        else:
            from_status = self.from_status

        id = self.id

        payload: dict[str, Any] | None
        if isinstance(self.payload, EventPayloadType0):
            payload = self.payload.to_dict()
        else:
            payload = self.payload

        source = self.source.value

        to_status = self.to_status.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "from_status": from_status,
                "id": id,
                "payload": payload,
                "source": source,
                "to_status": to_status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.event_payload_type_0 import EventPayloadType0

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_from_status(data: object) -> JobStatus | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                from_status_type_0 = JobStatus(data)

                return from_status_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobStatus | None, data)

        from_status = _parse_from_status(d.pop("from_status"))

        id = d.pop("id")

        def _parse_payload(data: object) -> EventPayloadType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                payload_type_0 = EventPayloadType0.from_dict(data)

                return payload_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EventPayloadType0 | None, data)

        payload = _parse_payload(d.pop("payload"))

        source = EventSource(d.pop("source"))

        to_status = JobStatus(d.pop("to_status"))

        event = cls(
            created_at=created_at,
            from_status=from_status,
            id=id,
            payload=payload,
            source=source,
            to_status=to_status,
        )

        event.additional_properties = d
        return event

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
