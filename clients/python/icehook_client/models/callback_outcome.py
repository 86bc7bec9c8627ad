from enum import StrEnum


class CallbackOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    MALFORMED = "malformed"
    PENDING = "pending"
    REJECTED = "rejected"
    STALE = "stale"
    UNMATCHED = "unmatched"
    UNRECOGNIZED = "unrecognized"

    def __str__(self) -> str:
        return str(self.value)
