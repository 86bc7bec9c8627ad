from enum import StrEnum


class WebhookEventType(StrEnum):
    BATCH_ABANDONED = "batch.abandoned"
    BATCH_FAILED = "batch.failed"
    BATCH_FINISHED = "batch.finished"
    BATCH_PROCESSING = "batch.processing"
    BATCH_REJECTED = "batch.rejected"
    BATCH_SUBMITTED = "batch.submitted"
    JOB_FAILED = "job.failed"
    JOB_PROCESSING = "job.processing"
    JOB_QUEUING = "job.queuing"
    JOB_REJECTED = "job.rejected"
    JOB_SUBMITTED = "job.submitted"
    JOB_SUCCEEDED = "job.succeeded"

    def __str__(self) -> str:
        return str(self.value)
