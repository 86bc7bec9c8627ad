"""Contains all the data models used in inputs/outputs"""

from .batch import Batch
from .batch_submission import BatchSubmission
from .batch_submission_output_config_type_0 import BatchSubmissionOutputConfigType0
from .batch_submission_user_data_type_0 import BatchSubmissionUserDataType0
from .batch_user_data_type_0 import BatchUserDataType0
from .callback import Callback
from .callback_outcome import CallbackOutcome
from .callback_page import CallbackPage
from .created_subscription import CreatedSubscription
from .created_subscription_headers import CreatedSubscriptionHeaders
from .created_subscription_signature_scheme import CreatedSubscriptionSignatureScheme
from .delivery import Delivery
from .delivery_attempt import DeliveryAttempt
from .delivery_detail import DeliveryDetail
from .delivery_page import DeliveryPage
from .delivery_status import DeliveryStatus
from .error import Error
from .error_detail import ErrorDetail
from .event import Event
from .event_filter import EventFilter
from .event_filter_in import EventFilterIn
from .event_filter_in_user_data import EventFilterInUserData
from .event_filter_user_data import EventFilterUserData
from .event_page import EventPage
from .event_payload_type_0 import EventPayloadType0
from .event_source import EventSource
from .health import Health
from .ice_callback import IceCallback
from .ice_callback_messagebody import IceCallbackMessagebody
from .job import Job
from .job_kind import JobKind
from .job_page import JobPage
from .job_status import JobStatus
from .job_submission import JobSubmission
from .job_submission_clips_param_type_0 import JobSubmissionClipsParamType0
from .job_submission_editing_produce_config_type_0 import (
    JobSubmissionEditingProduceConfigType0,
)
from .job_submission_media_metadata_type_0 import JobSubmissionMediaMetadataType0
from .job_submission_output_media_config_type_0 import (
    JobSubmissionOutputMediaConfigType0,
)
from .job_submission_outputmediatarget import JobSubmissionOutputmediatarget
from .job_submission_project_metadata_type_0 import JobSubmissionProjectMetadataType0
from .job_submission_timeline_type_0 import JobSubmissionTimelineType0
from .job_submission_user_data_type_0 import JobSubmissionUserDataType0
from .job_timeline import JobTimeline
from .job_timeline_user_data_type_0 import JobTimelineUserDataType0
from .job_user_data_type_0 import JobUserDataType0
from .list_event_type import ListEventType
from .list_type_item import ListTypeItem
from .new_subscription import NewSubscription
from .new_subscription_event_types_item import NewSubscriptionEventTypesItem
from .new_subscription_headers_type_0 import NewSubscriptionHeadersType0
from .new_subscription_signature_scheme import NewSubscriptionSignatureScheme
from .openapi_json_response_200 import OpenapiJsonResponse200
from .operational_event import OperationalEvent
from .operational_event_type import OperationalEventType
from .purged import Purged
from .readiness import Readiness
from .readiness_status import ReadinessStatus
from .recorded_event import RecordedEvent
from .recorded_event_type import RecordedEventType
from .recovered import Recovered
from .replay import Replay
from .replayed import Replayed
from .resolve import Resolve
from .resolve_resolution import ResolveResolution
from .retried import Retried
from .rotated_subscription import RotatedSubscription
from .rotated_subscription_headers import RotatedSubscriptionHeaders
from .rotated_subscription_signature_scheme import RotatedSubscriptionSignatureScheme
from .subscription import Subscription
from .subscription_change import SubscriptionChange
from .subscription_change_event_types_item import SubscriptionChangeEventTypesItem
from .subscription_change_headers_type_0 import SubscriptionChangeHeadersType0
from .subscription_headers import SubscriptionHeaders
from .subscription_notice import SubscriptionNotice
from .subscription_signature_scheme import SubscriptionSignatureScheme
from .subscriptions import Subscriptions
from .webhook_event import WebhookEvent
from .webhook_event_type import WebhookEventType

__all__ = (
    "Batch",
    "BatchSubmission",
    "BatchSubmissionOutputConfigType0",
    "BatchSubmissionUserDataType0",
    "BatchUserDataType0",
    "Callback",
    "CallbackOutcome",
    "CallbackPage",
    "CreatedSubscription",
    "CreatedSubscriptionHeaders",
    "CreatedSubscriptionSignatureScheme",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryDetail",
    "DeliveryPage",
    "DeliveryStatus",
    "Error",
    "ErrorDetail",
    "Event",
    "EventFilter",
    "EventFilterIn",
    "EventFilterInUserData",
    "EventFilterUserData",
    "EventPage",
    "EventPayloadType0",
    "EventSource",
    "Health",
    "IceCallback",
    "IceCallbackMessagebody",
    "Job",
    "JobKind",
    "JobPage",
    "JobStatus",
    "JobSubmission",
    "JobSubmissionClipsParamType0",
    "JobSubmissionEditingProduceConfigType0",
    "JobSubmissionMediaMetadataType0",
    "JobSubmissionOutputMediaConfigType0",
    "JobSubmissionOutputmediatarget",
    "JobSubmissionProjectMetadataType0",
    "JobSubmissionTimelineType0",
    "JobSubmissionUserDataType0",
    "JobTimeline",
    "JobTimelineUserDataType0",
    "JobUserDataType0",
    "ListEventType",
    "ListTypeItem",
    "NewSubscription",
    "NewSubscriptionEventTypesItem",
    "NewSubscriptionHeadersType0",
    "NewSubscriptionSignatureScheme",
    "OpenapiJsonResponse200",
    "OperationalEvent",
    "OperationalEventType",
    "Purged",
    "Readiness",
    "ReadinessStatus",
    "RecordedEvent",
    "RecordedEventType",
    "Recovered",
    "Replay",
    "Replayed",
    "Resolve",
    "ResolveResolution",
    "Retried",
    "RotatedSubscription",
    "RotatedSubscriptionHeaders",
    "RotatedSubscriptionSignatureScheme",
    "Subscription",
    "SubscriptionChange",
    "SubscriptionChangeEventTypesItem",
    "SubscriptionChangeHeadersType0",
    "SubscriptionHeaders",
    "SubscriptionNotice",
    "SubscriptionSignatureScheme",
    "Subscriptions",
    "WebhookEvent",
    "WebhookEventType",
)
