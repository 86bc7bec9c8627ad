"""The HTTP contract's parsers (app/http/contracts): each request is validated once, by
pydantic, against the shape that also feeds the OpenAPI description, and every refusal is a
``ValidationError`` naming the field at fault."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.errors import ValidationError
from app.core.queries import PAGE_DEFAULT, PAGE_MAX
from app.core.statuses import DeliveryStatus, JobKind, JobStatus
from app.http.contracts.callbacks import parse_callback_query
from app.http.contracts.deliveries import parse_delivery_query
from app.http.contracts.jobs import parse_batch, parse_job, parse_job_query
from app.http.contracts.subscriptions import URL_MAX, parse_replay, parse_subscription

OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}
BATCH_OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out_{index}.mp4"}


def _refused(parse: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        parse(*args, **kwargs)
    return refused.value


def test_a_job_takes_json_documents_as_objects_or_text_and_sends_text() -> None:
    as_object = parse_job({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": {"a": 1}})
    as_text = parse_job(
        {
            "ProjectId": "p",
            "OutputMediaConfig": '{"MediaURL": "https://bucket.oss-cn-shanghai'
            '.aliyuncs.com/out.mp4"}',
            "UserData": '{"a": 1}',
        }
    )
    assert as_object == as_text
    assert as_object.kind is JobKind.JOB
    assert as_object.parameters == {
        "ProjectId": "p",
        "OutputMediaConfig": '{"MediaURL":"https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}',
    }
    assert as_object.user_data == {"a": 1}
    assert (
        parse_job({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": None}).user_data == {}
    )


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"OutputMediaConfig": OUTPUT}, "ProjectId", "exactly one of"),
        ({"ProjectId": "p", "Timeline": {}, "OutputMediaConfig": OUTPUT}, "ProjectId", "exactly"),
        ({"TemplateId": "t", "OutputMediaConfig": OUTPUT}, "ClipsParam", "with TemplateId"),
        ({"ProjectId": "p"}, "OutputMediaConfig", "is required"),
        ({"ProjectId": 5, "OutputMediaConfig": OUTPUT}, "ProjectId", "string"),
        ({"ProjectId": "  ", "OutputMediaConfig": OUTPUT}, "ProjectId", "non-empty"),
        ({"ProjectId": "p", "OutputMediaConfig": 5}, "OutputMediaConfig", "JSON object"),
        ({"ProjectId": "p", "OutputMediaConfig": "[nope"}, "OutputMediaConfig", "not valid JSON"),
        ({"ProjectId": "p", "OutputMediaConfig": '{"a": NaN}'}, "OutputMediaConfig", "JSON"),
        ({"ProjectId": "p", "OutputMediaConfig": '{"a":"\\u0000"}'}, "OutputMediaConfig", "NUL"),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "OutputMediaTarget": "ftp"},
            "OutputMediaTarget",
            "oss-object",
        ),
        ({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": [1]}, "UserData", "object"),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": {"NotifyAddress": "x"}},
            "UserData",
            "set by icehook",
        ),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "ClientToken": "t"},
            "ClientToken",
            "set by icehook",
        ),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "Colour": "red"},
            "Colour",
            "known: ClipsParam",
        ),
    ],
)
def test_a_bad_job_is_refused_naming_its_field(body: dict[str, Any], field: str, says: str) -> None:
    refused = _refused(parse_job, body)
    assert refused.field == field
    assert says in refused.message


def test_a_batch_takes_its_projects_as_a_list_or_a_comma_string() -> None:
    listed = parse_batch({"ProjectIds": ["a", " b "], "OutputConfig": BATCH_OUTPUT})
    joined = parse_batch({"ProjectIds": "a, b,,", "OutputConfig": BATCH_OUTPUT})
    assert listed == joined
    assert listed.kind is JobKind.BATCH
    assert listed.parameters["ProjectIds"] == "a,b"
    assert (
        _refused(parse_batch, {"ProjectIds": " , ", "OutputConfig": OUTPUT}).field == "ProjectIds"
    )
    assert _refused(parse_batch, {"ProjectIds": [1], "OutputConfig": OUTPUT}).field == "ProjectIds"
    assert _refused(parse_batch, {"ProjectIds": ["a"]}).field == "OutputConfig"


def test_a_batch_of_several_projects_must_number_its_outputs() -> None:
    # Without {index} every project's video would be written to one object (docs/ice.md).
    refused = _refused(parse_batch, {"ProjectIds": ["a", "b"], "OutputConfig": OUTPUT})
    assert refused.field == "OutputConfig"
    assert "{index}" in refused.message
    alone = parse_batch({"ProjectIds": ["a"], "OutputConfig": OUTPUT})
    assert alone.parameters["ProjectIds"] == "a"


def test_a_subscription_is_validated_by_its_declared_limits() -> None:
    values = parse_subscription(
        {"url": "https://hooks.example/in", "event_types": ["*", "job.*", "*"], "enabled": False}
    )
    assert values == {
        "url": "https://hooks.example/in",
        "event_types": ["*", "job.*"],
        "enabled": False,
    }
    assert parse_subscription({"description": "orders"}, partial=True) == {"description": "orders"}
    for body, field in [
        ({"event_types": ["*"]}, "url"),
        ({"url": "https://hooks.example/in"}, "event_types"),
        ({"url": "https://hooks.example/" + "x" * URL_MAX, "event_types": ["*"]}, "url"),
        ({"url": "ftp://hooks.example/in", "event_types": ["*"]}, "url"),
        ({"url": "https://u:p@hooks.example/in", "event_types": ["*"]}, "url"),
        ({"url": "https://hooks.example/in#x", "event_types": ["*"]}, "url"),
        ({"url": "https://hooks.example/a b", "event_types": ["*"]}, "url"),
        ({"url": "https://hooks.example:99999/in", "event_types": ["*"]}, "url"),
        ({"url": "https://hooks.example/in", "event_types": []}, "event_types"),
        ({"url": "https://hooks.example/in", "event_types": ["job.done"]}, "event_types"),
        ({"url": "https://hooks.example/in", "event_types": "*"}, "event_types"),
        ({"url": "https://hooks.example/in", "event_types": ["*"], "enabled": "true"}, "enabled"),
        (
            {"url": "https://hooks.example/in", "event_types": ["*"], "description": "d" * 1001},
            "description",
        ),
        ({"url": "https://hooks.example/in", "event_types": ["*"], "secret": "mine"}, "secret"),
    ]:
        assert _refused(parse_subscription, body).field == field, body
    assert _refused(parse_subscription, {"enabled": 1}, partial=True).field == "enabled"


def test_a_replay_needs_a_zoned_since_before_its_until() -> None:
    since, until = parse_replay({"since": "2026-01-01T00:00:00Z"})
    assert (since, until) == (datetime(2026, 1, 1, tzinfo=UTC), None)
    assert _refused(parse_replay, {}).field == "since"
    assert _refused(parse_replay, {"since": 1767225600}).field == "since"
    assert _refused(parse_replay, {"since": "2026-01-01T00:00:00"}).field == "since"
    later = {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert _refused(parse_replay, later).field == "until"


def test_list_filters_are_read_from_text_and_an_empty_one_is_not_given() -> None:
    batch = uuid.uuid4()
    query = parse_job_query(
        {
            "status": "failed",
            "batch_id": str(batch),
            "created_after": "2026-01-01T08:00:00+08:00",
            "limit": "7",
            "project_id": "",
        }
    )
    assert (query.status, query.batch_id, query.limit, query.project_id) == (
        JobStatus.FAILED,
        batch,
        7,
        None,
    )
    assert query.created_after == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_job_query({}).limit == PAGE_DEFAULT
    assert parse_job_query({"limit": str(PAGE_MAX)}).limit == PAGE_MAX
    deliveries = parse_delivery_query({"status": "dead", "event_type": "job.failed"})
    assert (deliveries.status, deliveries.event_type) == (DeliveryStatus.DEAD, "job.failed")
    assert parse_callback_query({"outcome": "applied"}).outcome == "applied"


@pytest.mark.parametrize(
    ("parse", "params"),
    [
        (parse_job_query, {"limit": "0"}),
        (parse_job_query, {"limit": str(PAGE_MAX + 1)}),
        (parse_job_query, {"limit": "\u00b2"}),  # a digit to str.isdigit, not to int()
        (parse_job_query, {"limit": "9" * 5000}),
        (parse_job_query, {"status": "done"}),
        (parse_job_query, {"batch_id": "nope"}),
        (parse_job_query, {"created_before": "yesterday"}),
        (parse_job_query, {"created_after": "0001-01-01T00:00:00+01:00"}),
        (parse_job_query, {"project_id": "p\x00"}),
        (parse_job_query, {"cursor": "garbage"}),
        (parse_delivery_query, {"event_type": "job.done"}),
        (parse_delivery_query, {"cursor": "garbage"}),
        (parse_callback_query, {"outcome": "lost"}),
        (parse_callback_query, {"received_after": "2026-01-01"}),
    ],
)
def test_a_bad_filter_is_refused_naming_it(parse: Any, params: dict[str, str]) -> None:
    assert _refused(parse, params).field == next(iter(params))


def test_an_unknown_filter_is_refused_listing_the_known_ones() -> None:
    refused = _refused(parse_delivery_query, {"colour": "red"})
    assert refused.field == "colour"
    assert "is not a filter" in refused.message
    assert "subscription_id" in refused.message
