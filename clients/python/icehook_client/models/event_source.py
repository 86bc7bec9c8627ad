from enum import StrEnum


class EventSource(StrEnum):
    CALLBACK = "callback"
    MANUAL = "manual"
    RECONCILE = "reconcile"
    SUBMIT = "submit"
    SWEEP = "sweep"

    def __str__(self) -> str:
        return str(self.value)
