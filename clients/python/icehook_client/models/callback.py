from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.callback_outcome import CallbackOutcome

T = TypeVar("T", bound="Callback")


@_attrs_define
class Callback:
    """A received ICE callback as the audit shows it: how it was judged, not its body (whose
    UserData holds the callback token).

        Attributes:
            detail (None | str):
            event_type (None | str):
            ice_job_id (None | str):
            ice_status (None | str):
            id (int):
            job_id (None | UUID): None when no job matched
            outcome (CallbackOutcome):
            peer (None | str): the sender's address
            processed_at (datetime.datetime | None):
            received_at (datetime.datetime):
            request_id (None | str): its request's X-Request-ID, as in the log lines
            signed (bool | None): whether its X-ICE-SIGNATURE verified: false when AuthKeys are configured but it carried
                none (kept as a hint: every callback is confirmed with ICE); null when no AuthKey is configured
    """

    detail: None | str
    event_type: None | str
    ice_job_id: None | str
    ice_status: None | str
    id: int
    job_id: None | UUID
    outcome: CallbackOutcome
    peer: None | str
    processed_at: datetime.datetime | None
    received_at: datetime.datetime
    request_id: None | str
    signed: bool | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        detail: None | str
        detail = self.detail

        event_type: None | str
        event_type = self.event_type

        ice_job_id: None | str
        ice_job_id = self.ice_job_id

        ice_status: None | str
        ice_status = self.ice_status

        id = self.id

        job_id: None | str
        if isinstance(self.job_id, UUID):
            job_id = str(self.job_id)
        else:
            job_id = self.job_id

        outcome = self.outcome.value

        peer: None | str
        peer = self.peer

        processed_at: None | str
        if isinstance(self.processed_at, datetime.datetime):
            processed_at = self.processed_at.isoformat()
        else:
            processed_at = self.processed_at

        received_at = self.received_at.isoformat()

        request_id: None | str
        request_id = self.request_id

        signed: bool | None
        signed = self.signed

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "detail": detail,
                "event_type": event_type,
                "ice_job_id": ice_job_id,
                "ice_status": ice_status,
                "id": id,
                "job_id": job_id,
                "outcome": outcome,
                "peer": peer,
                "processed_at": processed_at,
                "received_at": received_at,
                "request_id": request_id,
                "signed": signed,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_detail(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        detail = _parse_detail(d.pop("detail"))

        def _parse_event_type(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        event_type = _parse_event_type(d.pop("event_type"))

        def _parse_ice_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        ice_job_id = _parse_ice_job_id(d.pop("ice_job_id"))

        def _parse_ice_status(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        ice_status = _parse_ice_status(d.pop("ice_status"))

        id = d.pop("id")

        def _parse_job_id(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                job_id_type_0 = UUID(data)

                return job_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        job_id = _parse_job_id(d.pop("job_id"))

        outcome = CallbackOutcome(d.pop("outcome"))

        def _parse_peer(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        peer = _parse_peer(d.pop("peer"))

        def _parse_processed_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                processed_at_type_0 = datetime.datetime.fromisoformat(data)

                return processed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        processed_at = _parse_processed_at(d.pop("processed_at"))

        received_at = datetime.datetime.fromisoformat(d.pop("received_at"))

        def _parse_request_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        request_id = _parse_request_id(d.pop("request_id"))

        def _parse_signed(data: object) -> bool | None:
            if data is None:
                return data
            return cast(bool | None, data)

        signed = _parse_signed(d.pop("signed"))

        callback = cls(
            detail=detail,
            event_type=event_type,
            ice_job_id=ice_job_id,
            ice_status=ice_status,
            id=id,
            job_id=job_id,
            outcome=outcome,
            peer=peer,
            processed_at=processed_at,
            received_at=received_at,
            request_id=request_id,
            signed=signed,
        )

        callback.additional_properties = d
        return callback

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
