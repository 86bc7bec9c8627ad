from enum import StrEnum


class OperationalEventType(StrEnum):
    SUBSCRIPTION_DISABLED = "subscription.disabled"
    SUBSCRIPTION_ENABLED = "subscription.enabled"

    def __str__(self) -> str:
        return str(self.value)
