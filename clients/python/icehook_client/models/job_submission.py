from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.job_submission_outputmediatarget import JobSubmissionOutputmediatarget
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_submission_clips_param_type_0 import JobSubmissionClipsParamType0
    from ..models.job_submission_editing_produce_config_type_0 import (
        JobSubmissionEditingProduceConfigType0,
    )
    from ..models.job_submission_media_metadata_type_0 import (
        JobSubmissionMediaMetadataType0,
    )
    from ..models.job_submission_output_media_config_type_0 import (
        JobSubmissionOutputMediaConfigType0,
    )
    from ..models.job_submission_project_metadata_type_0 import (
        JobSubmissionProjectMetadataType0,
    )
    from ..models.job_submission_timeline_type_0 import JobSubmissionTimelineType0
    from ..models.job_submission_user_data_type_0 import JobSubmissionUserDataType0


T = TypeVar("T", bound="JobSubmission")


@_attrs_define
class JobSubmission:
    """``SubmitMediaProducingJob``'s parameters, by ICE's names: exactly one of ProjectId,
    Timeline and TemplateId (with ClipsParam).

        Attributes:
            output_media_config (JobSubmissionOutputMediaConfigType0 | list[Any] | str): a JSON object or array, or its JSON
                text (ICE wants text)
            clips_param (JobSubmissionClipsParamType0 | list[Any] | str | Unset): a JSON object or array, or its JSON text
                (ICE wants text)
            editing_produce_config (JobSubmissionEditingProduceConfigType0 | list[Any] | str | Unset): a JSON object or
                array, or its JSON text (ICE wants text)
            media_metadata (JobSubmissionMediaMetadataType0 | list[Any] | str | Unset): a JSON object or array, or its JSON
                text (ICE wants text)
            output_media_target (JobSubmissionOutputmediatarget | Unset):
            project_id (str | Unset):
            project_metadata (JobSubmissionProjectMetadataType0 | list[Any] | str | Unset): a JSON object or array, or its
                JSON text (ICE wants text)
            source (str | Unset):
            template_id (str | Unset):
            timeline (JobSubmissionTimelineType0 | list[Any] | str | Unset): a JSON object or array, or its JSON text (ICE
                wants text)
            user_data (JobSubmissionUserDataType0 | None | str | Unset): your own data, kept with the job and sent back in
                its events; icehook adds NotifyAddress, and ICE allows 512 bytes in all
    """

    output_media_config: JobSubmissionOutputMediaConfigType0 | list[Any] | str
    clips_param: JobSubmissionClipsParamType0 | list[Any] | str | Unset = UNSET
    editing_produce_config: (
        JobSubmissionEditingProduceConfigType0 | list[Any] | str | Unset
    ) = UNSET
    media_metadata: JobSubmissionMediaMetadataType0 | list[Any] | str | Unset = UNSET
    output_media_target: JobSubmissionOutputmediatarget | Unset = UNSET
    project_id: str | Unset = UNSET
    project_metadata: JobSubmissionProjectMetadataType0 | list[Any] | str | Unset = (
        UNSET
    )
    source: str | Unset = UNSET
    template_id: str | Unset = UNSET
    timeline: JobSubmissionTimelineType0 | list[Any] | str | Unset = UNSET
    user_data: JobSubmissionUserDataType0 | None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_submission_clips_param_type_0 import (
            JobSubmissionClipsParamType0,
        )
        from ..models.job_submission_editing_produce_config_type_0 import (
            JobSubmissionEditingProduceConfigType0,
        )
        from ..models.job_submission_media_metadata_type_0 import (
            JobSubmissionMediaMetadataType0,
        )
        from ..models.job_submission_output_media_config_type_0 import (
            JobSubmissionOutputMediaConfigType0,
        )
        from ..models.job_submission_project_metadata_type_0 import (
            JobSubmissionProjectMetadataType0,
        )
        from ..models.job_submission_timeline_type_0 import JobSubmissionTimelineType0
        from ..models.job_submission_user_data_type_0 import JobSubmissionUserDataType0

        output_media_config: dict[str, Any] | list[Any] | str
        if isinstance(self.output_media_config, JobSubmissionOutputMediaConfigType0):
            output_media_config = self.output_media_config.to_dict()
        elif isinstance(self.output_media_config, list):
            output_media_config = self.output_media_config

        else:
            output_media_config = self.output_media_config

        clips_param: dict[str, Any] | list[Any] | str | Unset
        if isinstance(self.clips_param, Unset):
            clips_param = UNSET
        elif isinstance(self.clips_param, JobSubmissionClipsParamType0):
            clips_param = self.clips_param.to_dict()
        elif isinstance(self.clips_param, list):
            clips_param = self.clips_param

        else:
            clips_param = self.clips_param

        editing_produce_config: dict[str, Any] | list[Any] | str | Unset
        if isinstance(self.editing_produce_config, Unset):
            editing_produce_config = UNSET
        elif isinstance(
            self.editing_produce_config, JobSubmissionEditingProduceConfigType0
        ):
            editing_produce_config = self.editing_produce_config.to_dict()
        elif isinstance(self.editing_produce_config, list):
            editing_produce_config = self.editing_produce_config

        else:
            editing_produce_config = self.editing_produce_config

        media_metadata: dict[str, Any] | list[Any] | str | Unset
        if isinstance(self.media_metadata, Unset):
            media_metadata = UNSET
        elif isinstance(self.media_metadata, JobSubmissionMediaMetadataType0):
            media_metadata = self.media_metadata.to_dict()
        elif isinstance(self.media_metadata, list):
            media_metadata = self.media_metadata

        else:
            media_metadata = self.media_metadata

        output_media_target: str | Unset = UNSET
        if not isinstance(self.output_media_target, Unset):
            output_media_target = self.output_media_target.value

        project_id = self.project_id

        project_metadata: dict[str, Any] | list[Any] | str | Unset
        if isinstance(self.project_metadata, Unset):
            project_metadata = UNSET
        elif isinstance(self.project_metadata, JobSubmissionProjectMetadataType0):
            project_metadata = self.project_metadata.to_dict()
        elif isinstance(self.project_metadata, list):
            project_metadata = self.project_metadata

        else:
            project_metadata = self.project_metadata

        source = self.source

        template_id = self.template_id

        timeline: dict[str, Any] | list[Any] | str | Unset
        if isinstance(self.timeline, Unset):
            timeline = UNSET
        elif isinstance(self.timeline, JobSubmissionTimelineType0):
            timeline = self.timeline.to_dict()
        elif isinstance(self.timeline, list):
            timeline = self.timeline

        else:
            timeline = self.timeline

        user_data: dict[str, Any] | None | str | Unset
        if isinstance(self.user_data, Unset):
            user_data = UNSET
        elif isinstance(self.user_data, JobSubmissionUserDataType0):
            user_data = self.user_data.to_dict()
        else:
            user_data = self.user_data

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "OutputMediaConfig": output_media_config,
            }
        )
        if clips_param is not UNSET:
            field_dict["ClipsParam"] = clips_param
        if editing_produce_config is not UNSET:
            field_dict["EditingProduceConfig"] = editing_produce_config
        if media_metadata is not UNSET:
            field_dict["MediaMetadata"] = media_metadata
        if output_media_target is not UNSET:
            field_dict["OutputMediaTarget"] = output_media_target
        if project_id is not UNSET:
            field_dict["ProjectId"] = project_id
        if project_metadata is not UNSET:
            field_dict["ProjectMetadata"] = project_metadata
        if source is not UNSET:
            field_dict["Source"] = source
        if template_id is not UNSET:
            field_dict["TemplateId"] = template_id
        if timeline is not UNSET:
            field_dict["Timeline"] = timeline
        if user_data is not UNSET:
            field_dict["UserData"] = user_data

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_submission_clips_param_type_0 import (
            JobSubmissionClipsParamType0,
        )
        from ..models.job_submission_editing_produce_config_type_0 import (
            JobSubmissionEditingProduceConfigType0,
        )
        from ..models.job_submission_media_metadata_type_0 import (
            JobSubmissionMediaMetadataType0,
        )
        from ..models.job_submission_output_media_config_type_0 import (
            JobSubmissionOutputMediaConfigType0,
        )
        from ..models.job_submission_project_metadata_type_0 import (
            JobSubmissionProjectMetadataType0,
        )
        from ..models.job_submission_timeline_type_0 import JobSubmissionTimelineType0
        from ..models.job_submission_user_data_type_0 import JobSubmissionUserDataType0

        d = dict(src_dict)

        def _parse_output_media_config(
            data: object,
        ) -> JobSubmissionOutputMediaConfigType0 | list[Any] | str:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                output_media_config_type_0 = (
                    JobSubmissionOutputMediaConfigType0.from_dict(data)
                )

                return output_media_config_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                output_media_config_type_1 = cast(list[Any], data)

                return output_media_config_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobSubmissionOutputMediaConfigType0 | list[Any] | str, data)

        output_media_config = _parse_output_media_config(d.pop("OutputMediaConfig"))

        def _parse_clips_param(
            data: object,
        ) -> JobSubmissionClipsParamType0 | list[Any] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                clips_param_type_0 = JobSubmissionClipsParamType0.from_dict(data)

                return clips_param_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                clips_param_type_1 = cast(list[Any], data)

                return clips_param_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobSubmissionClipsParamType0 | list[Any] | str | Unset, data)

        clips_param = _parse_clips_param(d.pop("ClipsParam", UNSET))

        def _parse_editing_produce_config(
            data: object,
        ) -> JobSubmissionEditingProduceConfigType0 | list[Any] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                editing_produce_config_type_0 = (
                    JobSubmissionEditingProduceConfigType0.from_dict(data)
                )

                return editing_produce_config_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                editing_produce_config_type_1 = cast(list[Any], data)

                return editing_produce_config_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                JobSubmissionEditingProduceConfigType0 | list[Any] | str | Unset, data
            )

        editing_produce_config = _parse_editing_produce_config(
            d.pop("EditingProduceConfig", UNSET)
        )

        def _parse_media_metadata(
            data: object,
        ) -> JobSubmissionMediaMetadataType0 | list[Any] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                media_metadata_type_0 = JobSubmissionMediaMetadataType0.from_dict(data)

                return media_metadata_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                media_metadata_type_1 = cast(list[Any], data)

                return media_metadata_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobSubmissionMediaMetadataType0 | list[Any] | str | Unset, data)

        media_metadata = _parse_media_metadata(d.pop("MediaMetadata", UNSET))

        _output_media_target = d.pop("OutputMediaTarget", UNSET)
        output_media_target: JobSubmissionOutputmediatarget | Unset
        if isinstance(_output_media_target, Unset):
            output_media_target = UNSET
        else:
            output_media_target = JobSubmissionOutputmediatarget(_output_media_target)

        project_id = d.pop("ProjectId", UNSET)

        def _parse_project_metadata(
            data: object,
        ) -> JobSubmissionProjectMetadataType0 | list[Any] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                project_metadata_type_0 = JobSubmissionProjectMetadataType0.from_dict(
                    data
                )

                return project_metadata_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                project_metadata_type_1 = cast(list[Any], data)

                return project_metadata_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                JobSubmissionProjectMetadataType0 | list[Any] | str | Unset, data
            )

        project_metadata = _parse_project_metadata(d.pop("ProjectMetadata", UNSET))

        source = d.pop("Source", UNSET)

        template_id = d.pop("TemplateId", UNSET)

        def _parse_timeline(
            data: object,
        ) -> JobSubmissionTimelineType0 | list[Any] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                timeline_type_0 = JobSubmissionTimelineType0.from_dict(data)

                return timeline_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                timeline_type_1 = cast(list[Any], data)

                return timeline_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobSubmissionTimelineType0 | list[Any] | str | Unset, data)

        timeline = _parse_timeline(d.pop("Timeline", UNSET))

        def _parse_user_data(
            data: object,
        ) -> JobSubmissionUserDataType0 | None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                user_data_type_0 = JobSubmissionUserDataType0.from_dict(data)

                return user_data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobSubmissionUserDataType0 | None | str | Unset, data)

        user_data = _parse_user_data(d.pop("UserData", UNSET))

        job_submission = cls(
            output_media_config=output_media_config,
            clips_param=clips_param,
            editing_produce_config=editing_produce_config,
            media_metadata=media_metadata,
            output_media_target=output_media_target,
            project_id=project_id,
            project_metadata=project_metadata,
            source=source,
            template_id=template_id,
            timeline=timeline,
            user_data=user_data,
        )

        return job_submission
