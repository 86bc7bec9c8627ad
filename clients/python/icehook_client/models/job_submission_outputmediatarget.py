from enum import StrEnum


class JobSubmissionOutputmediatarget(StrEnum):
    OSS_OBJECT = "oss-object"
    S3 = "S3"
    VOD_MEDIA = "vod-media"

    def __str__(self) -> str:
        return str(self.value)
