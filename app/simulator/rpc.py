"""ICE's RPC protocol at ``/``: parse, verify, dispatch the six actions, answer as ICE does.

A call is decoded (query and form body as form-urlencoded, so ``+`` is a space, as the SDK
sends it), its V3 or V2 signature verified, its nonce refused if seen before, its Version and
Action checked; then come the injected faults and the SubmitMediaProducingJob rate limit, and
only then the action. Every answer is JSON with a ``RequestId``; every error has ICE's shape
``{RequestId, HostId, Code, Message, Recommend}`` (``wire``; docs/ice.md).

Where ICE's behaviour is not documented (docs/ice.md says how sure each fact is), the choice
made here is one a correct client copes with either way; each such place says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.ice.verification import RequestSignatureError, VerifiedRequest, verify_request
from app.simulator.callbacks import CallbackDispatcher, batch_callback, job_callback
from app.simulator.cutoff import CutOffs
from app.simulator.settings import SimulatorSettings
from app.simulator.state import (
    BATCH_JOB_TYPE,
    BATCH_JOB_TYPES,
    BATCH_STATUSES,
    JOB_STATUSES,
    Batch,
    Clock,
    Job,
    JobSpec,
    Store,
    TokenMismatch,
    TokenReused,
)
from app.simulator.sts import StsIssuer
from app.simulator.wire import (
    CLIENT_TOKEN_MAX_CHARS,
    INTERNAL,
    Answer,
    IceFault,
    NonceCache,
    Params,
    SubmitLimiter,
    batch_view,
    decode_form,
    error_body,
    in_range,
    invalid,
    job_view,
    json_object,
    max_results,
    missing,
    new_request_id,
    one_of,
    optional,
    output_url,
    page_cursor,
    page_of,
    page_token,
    read_body,
    reformatted,
    signature_fault,
    throttled,
    time_range,
    user_data_of,
)

logger = logging.getLogger(__name__)


API_VERSION = "2020-11-09"


SUBMIT_ACTIONS = frozenset({"SubmitMediaProducingJob", "SubmitSceneBatchEditingJob"})


JOB_ID = re.compile(r"[0-9a-fA-F]{32}")


SOURCE_PARAMETERS = ("ProjectId", "Timeline", "TemplateId")  # exactly one per submit


SUBMIT_PARAMETERS = (
    *SOURCE_PARAMETERS,
    *("ClipsParam", "OutputMediaConfig", "OutputMediaTarget", "ProjectMetadata"),
    *("EditingProduceConfig", "MediaMetadata", "UserData", "Source"),
)


OUTPUT_TARGETS = frozenset({"oss-object", "vod-media", "S3"})


SOURCES = frozenset({"OpenAPI", "AliyunConsole", "WebSDK"})


LIST_JOB_TYPES = frozenset({"LiveEditingJob", "EditingJob", "VETemplateJob"})


class RpcService:
    """The ``/`` endpoint: one instance per simulator."""

    def __init__(
        self,
        *,
        settings: Callable[[], SimulatorSettings],
        store: Store,
        callbacks: CallbackDispatcher,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._settings = settings
        self._store = store
        self._callbacks = callbacks
        self._clock = clock
        self._rng = rng
        self._nonces = NonceCache()
        self._limiter = SubmitLimiter()
        self.sts = StsIssuer()  # temporary credentials it issued (GET /_sim/sts)
        self.cut_offs = CutOffs()
        # Action -> calls whose signature, nonce and version were accepted: what ICE received.
        self.calls: Counter[str] = Counter()
        self._actions: dict[str, Callable[[Params, SimulatorSettings], Answer]] = {
            "SubmitMediaProducingJob": self._submit_media_producing_job,
            "SubmitSceneBatchEditingJob": self._submit_scene_batch_editing_job,
            "GetMediaProducingJob": self._get_media_producing_job,
            "GetBatchMediaProducingJob": self._get_batch_media_producing_job,
            "ListMediaProducingJobs": self._list_media_producing_jobs,
            "ListBatchMediaProducingJobs": self._list_batch_media_producing_jobs,
        }

    def submits_peak(self) -> int:
        """The most submit calls that arrived within one second, admitted or not."""
        return self._limiter.peak

    async def endpoint(self, request: Request) -> Response:
        request_id = new_request_id()
        host = request.headers.get("host", "")  # ICE's HostId is the endpoint it was called at
        settings = self._settings()
        headers = {"x-acs-request-id": request_id}
        action = ""
        try:
            action, answer = await self._answer(request, settings)
            body: Answer = {"RequestId": request_id, **answer}
            status = 200
        except IceFault as fault:
            body, status = error_body(fault, request_id, host), fault.status
            if fault.retry_after_ms is not None:
                headers["x-acs-retry-after"] = str(fault.retry_after_ms)
        except Exception:
            # A bug here must still look like ICE to the client: InternalError, logged.
            logger.exception("simulator failed on %s", request.url)
            body, status = (
                error_body(IceFault(500, "InternalError", INTERNAL), request_id, host),
                500,
            )
        if settings.api_latency_ms > 0:
            await asyncio.sleep(settings.api_latency_ms / 1000)
        if (
            status == 200
            and action in SUBMIT_ACTIONS
            and self._rng.random() < settings.submit_answer_loss_rate
        ):
            # The job exists; the client never learns its id (submit_answer_loss_rate).
            logger.info("cut off the answer to %s %s", action, request_id)
            return self.cut_offs.answer()
        return JSONResponse(body, status_code=status, headers=headers)

    async def _answer(self, request: Request, settings: SimulatorSettings) -> tuple[str, Answer]:
        """The action called and its answer."""
        query = decode_form(request.url.query, "query string")
        body = await read_body(request)
        form: dict[str, str] = {}
        content_type = request.headers.get("content-type", "").lower()
        if body and content_type.startswith("application/x-www-form-urlencoded"):
            try:
                form = decode_form(body.decode(), "body")
            except UnicodeDecodeError:
                raise IceFault(400, "InvalidParameter", "The request body is not UTF-8.") from None
        verified = self._verify(request, query, form, body, settings)
        self.calls[verified.action] += 1
        handler = self._actions.get(verified.action)
        if handler is None:
            raise IceFault(
                404,
                "InvalidAction.NotFound",
                f"Specified api {verified.action!r} is not found, "
                "please check your url and method.",
            )
        self._inject_faults(verified.action, settings)
        return verified.action, handler({**query, **form}, settings)

    def _verify(
        self,
        request: Request,
        query: Params,
        form: Params,
        body: bytes,
        settings: SimulatorSettings,
    ) -> VerifiedRequest:
        now = self._clock()
        try:
            verified = verify_request(
                method=request.method,
                path=request.url.path,
                query=query,
                form=form,
                headers=request.headers,
                body=body,
                secret_for=lambda key: settings.access_keys.get(key) or self.sts.secret_for(key),
                now=datetime.fromtimestamp(now, UTC),
            )
        except RequestSignatureError as exc:
            raise signature_fault(exc) from None
        token = request.headers.get("x-acs-security-token") or {**query, **form}.get(
            "SecurityToken"
        )
        self.sts.check(verified.access_key_id, token)
        if not verified.nonce:
            raise missing("SignatureNonce")
        if not self._nonces.claim(verified.access_key_id, verified.nonce, now):
            raise IceFault(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        if verified.version != API_VERSION:
            raise IceFault(
                400, "NoSuchVersion", f"Specified api version {verified.version!r} is not valid."
            )
        return verified

    def _inject_faults(self, action: str, settings: SimulatorSettings) -> None:
        if self._rng.random() < settings.api_error_rate:
            if self._rng.random() < 0.5:
                raise throttled(1000)
            raise IceFault(500, "InternalError", INTERNAL)
        if action in SUBMIT_ACTIONS:
            wait = self._limiter.admit(settings.submit_qps, time.monotonic())
            if wait is not None:
                raise throttled(math.ceil(wait * 1000))

    # --- actions ------------------------------------------------------------------------------

    def _submit_media_producing_job(self, params: Params, settings: SimulatorSettings) -> Answer:
        sources = [name for name in SOURCE_PARAMETERS if optional(params, name)]
        if not sources:
            raise missing("ProjectId, Timeline or TemplateId")
        if len(sources) > 1:
            raise invalid(
                sources[1],
                "Pass exactly one of ProjectId, Timeline and TemplateId, "
                f"not {' and '.join(sources)}.",
            )
        json_object(params, "Timeline")
        if optional(params, "TemplateId") and not optional(params, "ClipsParam"):
            raise missing("ClipsParam")
        json_object(params, "ClipsParam")
        output = json_object(params, "OutputMediaConfig")
        if output is None:
            raise missing("OutputMediaConfig")
        target = one_of(params, "OutputMediaTarget", OUTPUT_TARGETS)
        media_url = output_url(output, "OutputMediaConfig")
        for name in ("ProjectMetadata", "EditingProduceConfig", "MediaMetadata"):
            json_object(params, name)
        one_of(params, "Source", SOURCES)
        user_data = user_data_of(params)
        client_token = optional(params, "ClientToken")
        if client_token is not None and (
            len(client_token) > CLIENT_TOKEN_MAX_CHARS
            or not client_token.isascii()
            or not client_token.isprintable()
        ):
            raise invalid(
                "ClientToken", f"It must be at most {CLIENT_TOKEN_MAX_CHARS} ASCII characters."
            )
        spec = JobSpec(
            project_id=optional(params, "ProjectId"),
            timeline=optional(params, "Timeline"),
            template_id=optional(params, "TemplateId"),
            clips_param=optional(params, "ClipsParam"),
            media_url=media_url,
            vod_output=target == "vod-media",
            user_data=user_data,
        )
        fingerprint = json.dumps(
            {name: params[name] for name in SUBMIT_PARAMETERS if optional(params, name)},
            sort_keys=True,
        )
        try:
            job, created = self._store.submit_job(
                spec, settings, client_token=client_token, fingerprint=fingerprint
            )
        except TokenMismatch:
            # ICE does not document a reused ClientToken (docs/ice.md, Jobs: UNCONFIRMED); this code
            # is our invention, modelled on other Alibaba APIs. The same token with the same
            # parameters answers the original job instead.
            raise IceFault(
                400,
                "IdempotentParameterMismatch",
                "The specified ClientToken was already used with different request parameters.",
            ) from None
        except TokenReused:
            # client_token_reuse "error": the code any invalid parameter has, so a client
            # cannot tell it from a real refusal by its code.
            raise IceFault(
                400, "InvalidParameter", 'The specified parameter "ClientToken" has been used.'
            ) from None
        if created:
            self._schedule_job(job, settings)
        answer: Answer = {"ProjectId": job.project_id, "JobId": job.job_id, "MediaId": job.media_id}
        if job.vod_media_id is not None:
            answer["VodMediaId"] = job.vod_media_id
        return answer

    def _submit_scene_batch_editing_job(
        self, params: Params, settings: SimulatorSettings
    ) -> Answer:
        raw_ids = optional(params, "ProjectIds")
        if raw_ids is None:
            raise missing("ProjectIds")
        project_ids = [part.strip() for part in raw_ids.split(",")]
        if not all(project_ids):
            raise invalid("ProjectIds", "It must be project IDs separated by commas.")
        output_text = optional(params, "OutputConfig")
        output = json_object(params, "OutputConfig")
        if output is None or output_text is None:
            raise missing("OutputConfig")
        for unsupported in ("Count", "GeneratePreviewOnly"):
            if unsupported in output:
                raise invalid(f"OutputConfig.{unsupported}", "It is not supported for this job.")
        media_urls = [
            output_url(output, "OutputConfig", index) for index in range(1, len(project_ids) + 1)
        ]
        if len(set(media_urls)) < len(media_urls):
            # Every video would be written to one object; ICE's docs have OutputConfig name
            # {index} for this (docs/ice.md, Batches), and the simulator holds them to it.
            raise invalid(
                "OutputConfig", "With several projects, MediaURL or FileName must hold {index}."
            )
        user_data = user_data_of(params)
        batch = self._store.submit_batch(
            project_ids,
            output_text,
            media_urls,
            vod_output="MediaURL" not in output,
            user_data=user_data,
            settings=settings,
        )
        for job in batch.sub_jobs:
            self._schedule_job(job, settings)
        # UNCONFIRMED whether scene batches and their sub-jobs call back (docs/ice.md,
        # Callbacks): we send both, so a receiver must cope with sub-job events and one batch event.
        callback = batch_callback(batch, settings.user_id)
        if callback is not None:
            # A moment after the last sub-job, so the batch event comes after theirs unless a
            # configured delay reorders them.
            self._callbacks.schedule(batch.done_at + 0.05, callback)
        return {"JobId": batch.job_id}

    def _schedule_job(self, job: Job, settings: SimulatorSettings) -> None:
        callback = job_callback(job, settings.user_id, settings.callback_failure_status)
        if callback is not None:
            self._callbacks.schedule(job.done_at, callback)

    def _job_id(self, params: Params) -> str:
        job_id = optional(params, "JobId")
        if job_id is None:
            raise missing("JobId")
        if not JOB_ID.fullmatch(job_id):
            raise invalid("JobId")
        return job_id

    def _get_media_producing_job(self, params: Params, settings: SimulatorSettings) -> Answer:
        job = self._store.job(self._job_id(params))
        if job is None:
            raise IceFault(404, "JobNotFound", "The specified job not found")
        return {"MediaProducingJob": job_view(job, self._clock(), detail=True)}

    def _get_batch_media_producing_job(self, params: Params, settings: SimulatorSettings) -> Answer:
        # ICE documents JobNotFound for GetMediaProducingJob only; the same answer here.
        batch = self._store.batch(self._job_id(params))
        if batch is None:
            raise IceFault(404, "JobNotFound", "The specified job not found")
        return {"EditingBatchJob": batch_view(batch, self._clock(), detail=True)}

    def _list_media_producing_jobs(self, params: Params, settings: SimulatorSettings) -> Answer:
        start, end = time_range(params)
        status = one_of(params, "Status", JOB_STATUSES)
        job_type = one_of(params, "JobType", LIST_JOB_TYPES)
        sort = one_of(params, "SortBy", ("CreationTime:Asc", "CreationTime:Desc"))
        descending = sort != "CreationTime:Asc"
        size = max_results(params)
        cursor = page_cursor(params, "jobs", descending)
        project_id = optional(params, "ProjectId")
        master_job_id = optional(params, "MasterJobId")
        keyword = optional(params, "Keyword")
        now = self._clock()

        def keep(job: Job) -> bool:
            return (
                in_range(job.created, start, end)
                and (status is None or job.status_at(now) == status)
                and (job_type is None or job.job_type == job_type)
                and (project_id is None or job.project_id == project_id)
                and (master_job_id is None or job.master_job_id == master_job_id)
                and (keyword is None or keyword in job.job_id or keyword in job.project_id)
            )

        page, more = page_of(self._store.jobs_after(cursor, descending), keep, size)
        answer: Answer = {"MediaProducingJobList": [job_view(j, now, detail=False) for j in page]}
        if more:
            answer["NextToken"] = page_token("jobs", descending, page[-1].seq)
        answer["MaxResults"] = str(size)  # a string in ICE's model
        return answer

    def _list_batch_media_producing_jobs(
        self, params: Params, settings: SimulatorSettings
    ) -> Answer:
        start, end = time_range(params)
        status = one_of(params, "Status", BATCH_STATUSES)
        job_type = one_of(params, "JobType", BATCH_JOB_TYPES)
        descending = one_of(params, "SortBy", ("asc", "desc")) != "asc"
        size = max_results(params)
        cursor = page_cursor(params, "batches", descending)
        job_id = optional(params, "JobId")
        now = self._clock()

        def keep(batch: Batch) -> bool:
            return (
                settings.batch_listing != "absent"  # as if ICE listed no scene batch
                and in_range(batch.created, start, end)
                and (status is None or batch.status_at(now) == status)
                and (job_type is None or job_type == BATCH_JOB_TYPE)
                and (job_id is None or batch.job_id == job_id)
            )

        page, more = page_of(self._store.batches_after(cursor, descending), keep, size)
        views = [batch_view(b, now, detail=False) for b in page]
        if settings.batch_listing == "reformatted":
            for view in views:
                user_data = view.get("UserData")
                if isinstance(user_data, str):
                    view["UserData"] = reformatted(user_data)
        answer: Answer = {"EditingBatchJobList": views}
        if more:
            answer["NextToken"] = page_token("batches", descending, page[-1].seq)
        answer["MaxResults"] = size  # an integer in ICE's model, unlike the job list's
        return answer
