from enum import StrEnum


class ResolveResolution(StrEnum):
    ABANDON = "abandon"
    RESUBMIT = "resubmit"

    def __str__(self) -> str:
        return str(self.value)
