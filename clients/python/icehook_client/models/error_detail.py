from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job import Job


T = TypeVar("T", bound="ErrorDetail")


@_attrs_define
class ErrorDetail:
    """
    Attributes:
        code (str):
        message (str):
        field (str | Unset): the parameter at fault
        ice_code (str | Unset):
        ice_message (str | Unset):
        ice_request_id (str | Unset):
        job (Job | Unset): A job (``kind`` job) or a batch (``kind`` batch); ``status`` only moves forward.
    """

    code: str
    message: str
    field: str | Unset = UNSET
    ice_code: str | Unset = UNSET
    ice_message: str | Unset = UNSET
    ice_request_id: str | Unset = UNSET
    job: Job | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        code = self.code

        message = self.message

        field = self.field

        ice_code = self.ice_code

        ice_message = self.ice_message

        ice_request_id = self.ice_request_id

        job: dict[str, Any] | Unset = UNSET
        if not isinstance(self.job, Unset):
            job = self.job.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "code": code,
                "message": message,
            }
        )
        if field is not UNSET:
            field_dict["field"] = field
        if ice_code is not UNSET:
            field_dict["ice_code"] = ice_code
        if ice_message is not UNSET:
            field_dict["ice_message"] = ice_message
        if ice_request_id is not UNSET:
            field_dict["ice_request_id"] = ice_request_id
        if job is not UNSET:
            field_dict["job"] = job

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job import Job

        d = dict(src_dict)
        code = d.pop("code")

        message = d.pop("message")

        field = d.pop("field", UNSET)

        ice_code = d.pop("ice_code", UNSET)

        ice_message = d.pop("ice_message", UNSET)

        ice_request_id = d.pop("ice_request_id", UNSET)

        _job = d.pop("job", UNSET)
        job: Job | Unset
        if isinstance(_job, Unset):
            job = UNSET
        else:
            job = Job.from_dict(_job)

        error_detail = cls(
            code=code,
            message=message,
            field=field,
            ice_code=ice_code,
            ice_message=ice_message,
            ice_request_id=ice_request_id,
            job=job,
        )

        error_detail.additional_properties = d
        return error_detail

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
