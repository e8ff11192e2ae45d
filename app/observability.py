"""Structured logs: JSON lines on stdout, one access line per request, a request id everywhere.

Every `logging.getLogger(__name__)` call in the app goes through structlog's formatter, so
library and app lines share one format. The request id (a sane inbound `X-Request-ID`, or a
new one) is bound for the request, added to every line logged while it runs, and echoed in
the response. Message bodies, tokens and secrets are never logged.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
import structlog
from flask import Flask, Response, g, request

SLOW_REQUEST_SECONDS = 2.0
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = structlog.get_logger("app.access")


def configure_logging(app: Flask) -> None:
    json_logs = app.config.get("LOG_FORMAT", "json") == "json"
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Every request writes a line or more (the access line, which a webhook delivery's outcome
    # joins), so what no line shows is not computed: the caller's file and line (a walk up the stack per
    # record), the thread's and the multiprocessing names (the Logging HOWTO's "Optimization" switches).
    # The process id stays: gunicorn's own lines print it (`[%(process)d]`).
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False
    logging.logProcesses = True
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.set_name("app")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "app"] + [handler]
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    # werkzeug's own access lines would double ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_clear_context)


def _json_line(event: Any, **options: Any) -> str:
    """structlog's JSON line, encoded by orjson (C; a quarter of json.dumps' time here);
    anything it cannot encode goes through structlog's fallback (`repr`)."""
    return orjson.dumps(event, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS).decode()


def _start_request() -> None:
    inbound = request.headers.get("X-Request-ID", "")
    g.request_id = inbound if _REQUEST_ID.match(inbound) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers["X-Request-ID"] = request_id
    started = g.get("request_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    # The id was kept when the agent was identified: reading it from the ORM object after a
    # commit would reload the row (one more query per request).
    agent_id = g.get("agent_id")
    fields = {
        "method": request.method,
        "route": request.url_rule.rule if request.url_rule else None,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round(duration * 1000, 2),
        "agent_id": agent_id,
    }
    if duration > SLOW_REQUEST_SECONDS:
        access_log.warning("slow request", **fields)
    else:
        access_log.info("request", **fields)
    return response


def _clear_context(exc: BaseException | None) -> None:
    structlog.contextvars.clear_contextvars()
