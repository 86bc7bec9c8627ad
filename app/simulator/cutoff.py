"""Submit answers cut off on purpose (``submit_answer_loss_rate``): the job exists, and the
client never learns its id."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# What uvicorn logs when an app returns before its response is complete; it then closes the
# connection, which is what a cut-off answer is for.
_INCOMPLETE = "ASGI callable returned without completing response"


class CutOffs(logging.Filter):
    """Answers cut off on purpose (submit_answer_loss_rate): ``answer`` promises a body, sends
    part of it and returns, so the server closes the connection mid-answer. The filter, on
    uvicorn's error logger while the simulator runs, drops the one line uvicorn logs for each:
    that fault was asked for. Any other incomplete response is still logged."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = 0

    def answer(self) -> Response:
        self._pending += 1
        return _CutOff()

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pending and record.getMessage().startswith(_INCOMPLETE):
            self._pending -= 1
            return False
        return True


class _CutOff(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = [(b"content-type", b"application/json"), (b"content-length", b"512")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b'{"RequestId":', "more_body": True})
