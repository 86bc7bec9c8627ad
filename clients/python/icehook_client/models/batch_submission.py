from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.batch_submission_output_config_type_0 import (
        BatchSubmissionOutputConfigType0,
    )
    from ..models.batch_submission_user_data_type_0 import BatchSubmissionUserDataType0


T = TypeVar("T", bound="BatchSubmission")


@_attrs_define
class BatchSubmission:
    """``SubmitSceneBatchEditingJob``'s parameters, by ICE's names.

    Attributes:
        output_config (BatchSubmissionOutputConfigType0 | list[Any] | str): a JSON object or array, or its JSON text
            (ICE wants text)
        project_ids (list[str] | str): a list, or one comma-separated string
        user_data (BatchSubmissionUserDataType0 | None | str | Unset): your own data, kept with the job and sent back in
            its events; icehook adds NotifyAddress, and ICE allows 512 bytes in all
    """

    output_config: BatchSubmissionOutputConfigType0 | list[Any] | str
    project_ids: list[str] | str
    user_data: BatchSubmissionUserDataType0 | None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.batch_submission_output_config_type_0 import (
            BatchSubmissionOutputConfigType0,
        )
        from ..models.batch_submission_user_data_type_0 import (
            BatchSubmissionUserDataType0,
        )

        output_config: dict[str, Any] | list[Any] | str
        if isinstance(self.output_config, BatchSubmissionOutputConfigType0):
            output_config = self.output_config.to_dict()
        elif isinstance(self.output_config, list):
            output_config = self.output_config

        else:
            output_config = self.output_config

        project_ids: list[str] | str
        if isinstance(self.project_ids, list):
            project_ids = self.project_ids

        else:
            project_ids = self.project_ids

        user_data: dict[str, Any] | None | str | Unset
        if isinstance(self.user_data, Unset):
            user_data = UNSET
        elif isinstance(self.user_data, BatchSubmissionUserDataType0):
            user_data = self.user_data.to_dict()
        else:
            user_data = self.user_data

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "OutputConfig": output_config,
                "ProjectIds": project_ids,
            }
        )
        if user_data is not UNSET:
            field_dict["UserData"] = user_data

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.batch_submission_output_config_type_0 import (
            BatchSubmissionOutputConfigType0,
        )
        from ..models.batch_submission_user_data_type_0 import (
            BatchSubmissionUserDataType0,
        )

        d = dict(src_dict)

        def _parse_output_config(
            data: object,
        ) -> BatchSubmissionOutputConfigType0 | list[Any] | str:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                output_config_type_0 = BatchSubmissionOutputConfigType0.from_dict(data)

                return output_config_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                output_config_type_1 = cast(list[Any], data)

                return output_config_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BatchSubmissionOutputConfigType0 | list[Any] | str, data)

        output_config = _parse_output_config(d.pop("OutputConfig"))

        def _parse_project_ids(data: object) -> list[str] | str:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                project_ids_type_0 = cast(list[str], data)

                return project_ids_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | str, data)

        project_ids = _parse_project_ids(d.pop("ProjectIds"))

        def _parse_user_data(
            data: object,
        ) -> BatchSubmissionUserDataType0 | None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                user_data_type_0 = BatchSubmissionUserDataType0.from_dict(data)

                return user_data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BatchSubmissionUserDataType0 | None | str | Unset, data)

        user_data = _parse_user_data(d.pop("UserData", UNSET))

        batch_submission = cls(
            output_config=output_config,
            project_ids=project_ids,
            user_data=user_data,
        )

        return batch_submission
