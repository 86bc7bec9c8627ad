from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_kind import JobKind
from ..models.job_status import JobStatus

if TYPE_CHECKING:
    from ..models.callback import Callback
    from ..models.delivery import Delivery
    from ..models.event import Event
    from ..models.job_timeline_user_data_type_0 import JobTimelineUserDataType0
    from ..models.purged import Purged


T = TypeVar("T", bound="JobTimeline")


@_attrs_define
class JobTimeline:
    """A job with everything that happened to it, each list oldest first, and what of it
    retention has removed.

        Attributes:
            batch_id (None | UUID): the batch of a sub-job
            callbacks (list[Callback]):
            completed_at (datetime.datetime | None):
            created_at (datetime.datetime):
            deliveries (list[Delivery]):
            error_code (None | str):
            error_message (None | str):
            events (list[Event]):
            fate_unknown_since (datetime.datetime | None): set while ICE cannot show whether a submission whose answer was
                lost exists (a batch, when ICE lists no scene batch); a callback settles it, or POST /v1/batch-jobs/{id}/resolve
            ice_job_id (None | str):
            ice_status (None | str): ICE's own word, verbatim
            id (UUID):
            kind (JobKind):
            media_id (None | str):
            media_url (None | str):
            project_id (None | str):
            purged (Purged): What retention has removed of a job (ICEHOOK_RETENTION): each is null while nothing
                of the job can have been removed, or the time before which its records are gone (a
                callback by when it was received, a webhook, with its deliveries and their attempts, by
                when its event was recorded).
            status (JobStatus):
            sub_jobs_failed (int | None): a batch's sub-jobs that failed, once ICE has listed them
            sub_jobs_succeeded (int | None): a batch's sub-jobs that succeeded, once ICE has listed them
            updated_at (datetime.datetime):
            user_data (JobTimelineUserDataType0 | None): what the client sent, without NotifyAddress
    """

    batch_id: None | UUID
    callbacks: list[Callback]
    completed_at: datetime.datetime | None
    created_at: datetime.datetime
    deliveries: list[Delivery]
    error_code: None | str
    error_message: None | str
    events: list[Event]
    fate_unknown_since: datetime.datetime | None
    ice_job_id: None | str
    ice_status: None | str
    id: UUID
    kind: JobKind
    media_id: None | str
    media_url: None | str
    project_id: None | str
    purged: Purged
    status: JobStatus
    sub_jobs_failed: int | None
    sub_jobs_succeeded: int | None
    updated_at: datetime.datetime
    user_data: JobTimelineUserDataType0 | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_timeline_user_data_type_0 import JobTimelineUserDataType0

        batch_id: None | str
        if isinstance(self.batch_id, UUID):
            batch_id = str(self.batch_id)
        else:
            batch_id = self.batch_id

        callbacks = []
        for callbacks_item_data in self.callbacks:
            callbacks_item = callbacks_item_data.to_dict()
            callbacks.append(callbacks_item)

        completed_at: None | str
        if isinstance(self.completed_at, datetime.datetime):
            completed_at = self.completed_at.isoformat()
        else:
            completed_at = self.completed_at

        created_at = self.created_at.isoformat()

        deliveries = []
        for deliveries_item_data in self.deliveries:
            deliveries_item = deliveries_item_data.to_dict()
            deliveries.append(deliveries_item)

        error_code: None | str
        error_code = self.error_code

        error_message: None | str
        error_message = self.error_message

        events = []
        for events_item_data in self.events:
            events_item = events_item_data.to_dict()
            events.append(events_item)

        fate_unknown_since: None | str
        if isinstance(self.fate_unknown_since, datetime.datetime):
            fate_unknown_since = self.fate_unknown_since.isoformat()
        else:
            fate_unknown_since = self.fate_unknown_since

        ice_job_id: None | str
        ice_job_id = self.ice_job_id

        ice_status: None | str
        ice_status = self.ice_status

        id = str(self.id)

        kind = self.kind.value

        media_id: None | str
        media_id = self.media_id

        media_url: None | str
        media_url = self.media_url

        project_id: None | str
        project_id = self.project_id

        purged = self.purged.to_dict()

        status = self.status.value

        sub_jobs_failed: int | None
        sub_jobs_failed = self.sub_jobs_failed

        sub_jobs_succeeded: int | None
        sub_jobs_succeeded = self.sub_jobs_succeeded

        updated_at = self.updated_at.isoformat()

        user_data: dict[str, Any] | None
        if isinstance(self.user_data, JobTimelineUserDataType0):
            user_data = self.user_data.to_dict()
        else:
            user_data = self.user_data

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "batch_id": batch_id,
                "callbacks": callbacks,
                "completed_at": completed_at,
                "created_at": created_at,
                "deliveries": deliveries,
                "error_code": error_code,
                "error_message": error_message,
                "events": events,
                "fate_unknown_since": fate_unknown_since,
                "ice_job_id": ice_job_id,
                "ice_status": ice_status,
                "id": id,
                "kind": kind,
                "media_id": media_id,
                "media_url": media_url,
                "project_id": project_id,
                "purged": purged,
                "status": status,
                "sub_jobs_failed": sub_jobs_failed,
                "sub_jobs_succeeded": sub_jobs_succeeded,
                "updated_at": updated_at,
                "user_data": user_data,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.callback import Callback
        from ..models.delivery import Delivery
        from ..models.event import Event
        from ..models.job_timeline_user_data_type_0 import JobTimelineUserDataType0
        from ..models.purged import Purged

        d = dict(src_dict)

        def _parse_batch_id(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                batch_id_type_0 = UUID(data)

                return batch_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        batch_id = _parse_batch_id(d.pop("batch_id"))

        callbacks = []
        _callbacks = d.pop("callbacks")
        for callbacks_item_data in _callbacks:
            callbacks_item = Callback.from_dict(callbacks_item_data)

            callbacks.append(callbacks_item)

        def _parse_completed_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                completed_at_type_0 = datetime.datetime.fromisoformat(data)

                return completed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        completed_at = _parse_completed_at(d.pop("completed_at"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        deliveries = []
        _deliveries = d.pop("deliveries")
        for deliveries_item_data in _deliveries:
            deliveries_item = Delivery.from_dict(deliveries_item_data)

            deliveries.append(deliveries_item)

        def _parse_error_code(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error_code = _parse_error_code(d.pop("error_code"))

        def _parse_error_message(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error_message = _parse_error_message(d.pop("error_message"))

        events = []
        _events = d.pop("events")
        for events_item_data in _events:
            events_item = Event.from_dict(events_item_data)

            events.append(events_item)

        def _parse_fate_unknown_since(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                fate_unknown_since_type_0 = datetime.datetime.fromisoformat(data)

                return fate_unknown_since_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        fate_unknown_since = _parse_fate_unknown_since(d.pop("fate_unknown_since"))

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

        id = UUID(d.pop("id"))

        kind = JobKind(d.pop("kind"))

        def _parse_media_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        media_id = _parse_media_id(d.pop("media_id"))

        def _parse_media_url(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        media_url = _parse_media_url(d.pop("media_url"))

        def _parse_project_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        project_id = _parse_project_id(d.pop("project_id"))

        purged = Purged.from_dict(d.pop("purged"))

        status = JobStatus(d.pop("status"))

        def _parse_sub_jobs_failed(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        sub_jobs_failed = _parse_sub_jobs_failed(d.pop("sub_jobs_failed"))

        def _parse_sub_jobs_succeeded(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        sub_jobs_succeeded = _parse_sub_jobs_succeeded(d.pop("sub_jobs_succeeded"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_user_data(data: object) -> JobTimelineUserDataType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                user_data_type_0 = JobTimelineUserDataType0.from_dict(data)

                return user_data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobTimelineUserDataType0 | None, data)

        user_data = _parse_user_data(d.pop("user_data"))

        job_timeline = cls(
            batch_id=batch_id,
            callbacks=callbacks,
            completed_at=completed_at,
            created_at=created_at,
            deliveries=deliveries,
            error_code=error_code,
            error_message=error_message,
            events=events,
            fate_unknown_since=fate_unknown_since,
            ice_job_id=ice_job_id,
            ice_status=ice_status,
            id=id,
            kind=kind,
            media_id=media_id,
            media_url=media_url,
            project_id=project_id,
            purged=purged,
            status=status,
            sub_jobs_failed=sub_jobs_failed,
            sub_jobs_succeeded=sub_jobs_succeeded,
            updated_at=updated_at,
            user_data=user_data,
        )

        job_timeline.additional_properties = d
        return job_timeline

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
