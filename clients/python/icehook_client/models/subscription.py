from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.subscription_signature_scheme import SubscriptionSignatureScheme

if TYPE_CHECKING:
    from ..models.event_filter import EventFilter
    from ..models.subscription_headers import SubscriptionHeaders


T = TypeVar("T", bound="Subscription")


@_attrs_define
class Subscription:
    """A webhook endpoint; a v1 secret is shown only when created or rotated, a v1a secret
    key never (its public key always).

        Attributes:
            created_at (datetime.datetime):
            description (str):
            disabled_at (datetime.datetime | None):
            disabled_reason (None | str): why icehook disabled it (410 Gone, failing too long)
            enabled (bool):
            event_types (list[str]):
            failing_since (datetime.datetime | None): the first failure since the last success
            filter_ (EventFilter | None):
            headers (SubscriptionHeaders): names only; values masked
            id (UUID):
            max_in_flight (int):
            max_per_second (float | None):
            public_key (None | str): v1a: the whpk_ ed25519 key that verifies it; v1: null
            queue_until (datetime.datetime | None): while disabled, its new events are queued for it until then
            signature_scheme (SubscriptionSignatureScheme): v1: HMAC-SHA256 with a whsec_ secret; v1a: ed25519, see
                public_key
            updated_at (datetime.datetime):
            url (str):
    """

    created_at: datetime.datetime
    description: str
    disabled_at: datetime.datetime | None
    disabled_reason: None | str
    enabled: bool
    event_types: list[str]
    failing_since: datetime.datetime | None
    filter_: EventFilter | None
    headers: SubscriptionHeaders
    id: UUID
    max_in_flight: int
    max_per_second: float | None
    public_key: None | str
    queue_until: datetime.datetime | None
    signature_scheme: SubscriptionSignatureScheme
    updated_at: datetime.datetime
    url: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.event_filter import EventFilter

        created_at = self.created_at.isoformat()

        description = self.description

        disabled_at: None | str
        if isinstance(self.disabled_at, datetime.datetime):
            disabled_at = self.disabled_at.isoformat()
        else:
            disabled_at = self.disabled_at

        disabled_reason: None | str
        disabled_reason = self.disabled_reason

        enabled = self.enabled

        event_types = self.event_types

        failing_since: None | str
        if isinstance(self.failing_since, datetime.datetime):
            failing_since = self.failing_since.isoformat()
        else:
            failing_since = self.failing_since

        filter_: dict[str, Any] | None
        if isinstance(self.filter_, EventFilter):
            filter_ = self.filter_.to_dict()
        else:
            filter_ = self.filter_

        headers = self.headers.to_dict()

        id = str(self.id)

        max_in_flight = self.max_in_flight

        max_per_second: float | None
        max_per_second = self.max_per_second

        public_key: None | str
        public_key = self.public_key

        queue_until: None | str
        if isinstance(self.queue_until, datetime.datetime):
            queue_until = self.queue_until.isoformat()
        else:
            queue_until = self.queue_until

        signature_scheme = self.signature_scheme.value

        updated_at = self.updated_at.isoformat()

        url = self.url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "description": description,
                "disabled_at": disabled_at,
                "disabled_reason": disabled_reason,
                "enabled": enabled,
                "event_types": event_types,
                "failing_since": failing_since,
                "filter": filter_,
                "headers": headers,
                "id": id,
                "max_in_flight": max_in_flight,
                "max_per_second": max_per_second,
                "public_key": public_key,
                "queue_until": queue_until,
                "signature_scheme": signature_scheme,
                "updated_at": updated_at,
                "url": url,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.event_filter import EventFilter
        from ..models.subscription_headers import SubscriptionHeaders

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        description = d.pop("description")

        def _parse_disabled_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                disabled_at_type_0 = datetime.datetime.fromisoformat(data)

                return disabled_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        disabled_at = _parse_disabled_at(d.pop("disabled_at"))

        def _parse_disabled_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        disabled_reason = _parse_disabled_reason(d.pop("disabled_reason"))

        enabled = d.pop("enabled")

        event_types = cast(list[str], d.pop("event_types"))

        def _parse_failing_since(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                failing_since_type_0 = datetime.datetime.fromisoformat(data)

                return failing_since_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        failing_since = _parse_failing_since(d.pop("failing_since"))

        def _parse_filter_(data: object) -> EventFilter | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                filter_type_0 = EventFilter.from_dict(data)

                return filter_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EventFilter | None, data)

        filter_ = _parse_filter_(d.pop("filter"))

        headers = SubscriptionHeaders.from_dict(d.pop("headers"))

        id = UUID(d.pop("id"))

        max_in_flight = d.pop("max_in_flight")

        def _parse_max_per_second(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        max_per_second = _parse_max_per_second(d.pop("max_per_second"))

        def _parse_public_key(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        public_key = _parse_public_key(d.pop("public_key"))

        def _parse_queue_until(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                queue_until_type_0 = datetime.datetime.fromisoformat(data)

                return queue_until_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        queue_until = _parse_queue_until(d.pop("queue_until"))

        signature_scheme = SubscriptionSignatureScheme(d.pop("signature_scheme"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        url = d.pop("url")

        subscription = cls(
            created_at=created_at,
            description=description,
            disabled_at=disabled_at,
            disabled_reason=disabled_reason,
            enabled=enabled,
            event_types=event_types,
            failing_since=failing_since,
            filter_=filter_,
            headers=headers,
            id=id,
            max_in_flight=max_in_flight,
            max_per_second=max_per_second,
            public_key=public_key,
            queue_until=queue_until,
            signature_scheme=signature_scheme,
            updated_at=updated_at,
            url=url,
        )

        subscription.additional_properties = d
        return subscription

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
