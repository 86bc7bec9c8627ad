from enum import StrEnum


class JobKind(StrEnum):
    BATCH = "batch"
    JOB = "job"

    def __str__(self) -> str:
        return str(self.value)
