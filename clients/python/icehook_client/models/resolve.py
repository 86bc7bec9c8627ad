from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.resolve_resolution import ResolveResolution

T = TypeVar("T", bound="Resolve")


@_attrs_define
class Resolve:
    """An operator's choice for a submission whose fate is unknown.

    Attributes:
        resolution (ResolveResolution): resubmit: submit it to ICE again (ICE may then hold two); abandon: record it
            `abandoned` and stop looking
    """

    resolution: ResolveResolution

    def to_dict(self) -> dict[str, Any]:
        resolution = self.resolution.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "resolution": resolution,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        resolution = ResolveResolution(d.pop("resolution"))

        resolve = cls(
            resolution=resolution,
        )

        return resolve
