from enum import StrEnum


class JobStatus(StrEnum):
    ABANDONED = "abandoned"
    FAILED = "failed"
    FINISHED = "finished"
    PROCESSING = "processing"
    QUEUING = "queuing"
    REJECTED = "rejected"
    SUBMITTED = "submitted"
    SUBMITTING = "submitting"
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return str(self.value)
