"""The OpenAPI 3.1 document of every route, generated from the code and built once per process.

Nothing is written by hand in a separate file. `openapi_document(app)` walks `app.url_map`:
every registered rule and method is one operation (Flask's own `static` rule aside: the pages
use the hashed `/assets` URLs). For each, it reads

* the path parameters from the rule's converters (`<id:…>` an integer 1 … 2³¹−1, `<bigid:…>`
  1 … 2⁶³−1, `<string:…>`/`<path:…>` a string);
* the view's docstring: its first line is the summary, the rest the description;
* the view's `@documented(...)` declaration (below, placed right under the route decorator):
  operationId, tag, security, the statuses it answers with their models, media types and
  headers, and any header, query or form parameters not declared elsewhere;
* what the API accepts (query parameters, JSON bodies) from the pydantic models that validate
  it (`app/api/schemas.py`, `INPUTS`, keyed by operationId), so the documentation cannot drift
  from the validation;
* the JSON answers from the models of `app/api/responses.py` (`components/schemas`).

A declaration sits right under the route decorator; `conversation()` in `app/api/views.py`
is a short example to read.

The pieces many operations share — security schemes, the common answers (401, 429, 500, 503…),
headers, the document's `info` and tags — are defined once, here. A rule without a declaration
makes building fail, and `tests/test_openapi.py` checks the result against the app.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from werkzeug.routing import BaseConverter, PathConverter, Rule, UnicodeConverter

from app.api.responses import JSON_SCHEMAS, RESPONSE_MODELS, SendFailure
from app.api.schemas import INPUTS
from app.converters import MAX_BIG_ID, MAX_ID, BigIdConverter, IdConverter
from app.models.conversations import CONVERSATION_STATUSES

REF_TEMPLATE = "#/components/schemas/{model}"
EXTENSION_KEY = "openapi_document"
DECLARATION = "__openapi_operations__"
RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})  # Flask adds them to every rule

# A schema: a pydantic model (documented under its class name) or JSON Schema as a dict, in
# which models may stand for their `$ref`s.
Schema = type[BaseModel] | Mapping[str, Any]
Security = Sequence[Mapping[str, Sequence[str]]]
View = TypeVar("View", bound=Callable[..., Any])


# --- the declaration next to each view ------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One documented answer. With `component`, it is written once under `components/responses`
    and operations refer to it."""

    description: str
    content: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    component: str | None = None


@dataclass(frozen=True)
class Body:
    """A request body not generated from `INPUTS` (forms, the webhook's raw delivery), or one beside
    the JSON body of `INPUTS` (the multipart form of `sendMessage`)."""

    content: Mapping[str, Schema]
    description: str | None = None
    required: bool = True
    # Per media type, OpenAPI's `encoding` of its form fields (e.g. a file part's content types).
    encoding: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    tag: str
    security: Security
    responses: Mapping[int, Response]
    method: str | None = None
    parameters: Sequence[Mapping[str, Any]] = ()
    path: Mapping[str, str] = field(default_factory=dict)
    body: Body | None = None
    summary: str | None = None
    description: str | None = None


def documented(
    operation_id: str,
    *,
    tag: str,
    security: Security,
    responses: Mapping[int, Response],
    method: str | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
    path: Mapping[str, str] | None = None,
    body: Body | None = None,
    summary: str | None = None,
    description: str | None = None,
) -> Callable[[View], View]:
    """Declare how a view is documented; put it right under the route decorator.

    The summary and description come from the view's docstring unless given here. `method` is
    needed only when one view serves several methods (one `@documented` per method); `path`
    describes path parameters (their schemas come from the converters); `parameters` are the
    header and query parameters not generated from `INPUTS`.
    """
    operation = Operation(
        operation_id=operation_id,
        tag=tag,
        security=security,
        responses=responses,
        method=method.upper() if method else None,
        parameters=parameters,
        path=path or {},
        body=body,
        summary=summary,
        description=description,
    )

    def declare(view: View) -> View:
        setattr(view, DECLARATION, (*vars(view).get(DECLARATION, ()), operation))
        return view

    return declare


# --- small builders for declarations ---------------------------------------------------------------


def json_response(
    description: str, schema: Schema, *, headers: Mapping[str, Mapping[str, Any]] | None = None
) -> Response:
    return Response(description, {"application/json": schema}, headers or {})


def error_schema(code: str) -> dict[str, Any]:
    """The `Error` body with one stable `error` code."""
    return {"allOf": [{"$ref": REF_TEMPLATE.format(model="Error")}, {"properties": {"error": {"const": code}}}]}


def error_answer(code: str, description: str, *, headers: Mapping[str, Mapping[str, Any]] | None = None) -> Response:
    """A JSON error answer with the stable code `code`."""
    return json_response(description, error_schema(code), headers=headers)


def text(description: str, schema: Mapping[str, Any] | None = None) -> Response:
    return Response(description, {"text/plain": schema or {"type": "string"}})


def html(description: str, *, headers: Mapping[str, Mapping[str, Any]] | None = None) -> Response:
    """An HTML page or fragment."""
    return Response(description, {"text/html": {"type": "string"}}, headers or {})


def empty(description: str, *, headers: Mapping[str, Mapping[str, Any]] | None = None) -> Response:
    """An answer without a body."""
    return Response(description, headers=headers or {})


def query(
    name: str, schema: Mapping[str, Any], description: str | None = None, *, required: bool = False
) -> dict[str, Any]:
    return _parameter(name, "query", schema, description, required)


def header(
    name: str, schema: Mapping[str, Any], description: str | None = None, *, required: bool = False
) -> dict[str, Any]:
    return _parameter(name, "header", schema, description, required)


def _parameter(
    name: str, where: str, schema: Mapping[str, Any], description: str | None, required: bool
) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required}
    if description:
        parameter["description"] = description
    parameter["schema"] = dict(schema)
    return parameter


def html_form(
    properties: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    required: Sequence[str] = (),
    body_required: bool = True,
) -> Body:
    """A CSRF-protected HTML form (`csrf_token` is always required)."""
    schema = {
        "type": "object",
        "required": ["csrf_token", *required],
        "properties": {"csrf_token": {"type": "string"}, **(properties or {})},
    }
    return Body({"application/x-www-form-urlencoded": schema}, required=body_required)


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


# --- shared pieces, defined once -------------------------------------------------------------------

PUBLIC: Security = []
API_AUTH: Security = [{"bearerAuth": []}, {"sessionCookie": []}]
SESSION: Security = [{"sessionCookie": []}]
METRICS_AUTH: Security = [{"metricsToken": []}]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`flask --app wsgi agents token EMAIL`), sent as `Authorization: Bearer "
        "<token>`. Tokens are stored hashed and stop working when revoked, expired, or when their agent is "
        "deactivated. A malformed `Authorization` header is refused even if a session cookie is also sent.",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The `METRICS_TOKEN` setting (not an agent's API token), for the Prometheus scraper.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
        "description": "The Flask session cookie of an agent logged in to the inbox. A POST, PATCH or DELETE to the "
        "API authenticated by this cookie (not by a bearer token) must also send the page's CSRF token (its "
        '`<meta name="csrf-token">`) in `X-CSRFToken`; without it the answer is 403 `{"error": "csrf_failed"}`.',
    },
}

HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "A strong tag of the body (quoted SHA-1); send it back as `If-None-Match`.",
        "required": True,
        "schema": {"type": "string", "pattern": '^"[^"]+"$'},
    },
    "CacheControl": {
        "description": "Always `private, no-cache`; revalidate with `If-None-Match`.",
        "required": True,
        "schema": {"type": "string", "const": "private, no-cache"},
    },
    "RetryAfter": {
        "description": "Seconds to wait before trying again (for 503, `DB_RETRY_AFTER_SECONDS`, 5 by default).",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Location": {"description": "Where to go next.", "required": True, "schema": {"type": "string"}},
    "IdempotentReplayed": {
        "description": "`true` when this is the stored answer of an earlier request with the same `Idempotency-Key`.",
        "required": False,
        "schema": {"type": "string", "const": "true"},
    },
    "WwwAuthenticate": {
        "description": 'Always `Bearer realm="whatsapp-inbox"`.',
        "required": True,
        "schema": {"type": "string"},
    },
}
ETAG = _ref("headers", "ETag")
CACHE_CONTROL = _ref("headers", "CacheControl")
RETRY_AFTER = _ref("headers", "RetryAfter")
LOCATION = _ref("headers", "Location")
IDEMPOTENT_REPLAYED = _ref("headers", "IdempotentReplayed")
CONDITIONAL = {"ETag": ETAG, "Cache-Control": CACHE_CONTROL}  # the answers polled with If-None-Match

PARAMETERS: dict[str, dict[str, Any]] = {
    "IfNoneMatch": header(
        "If-None-Match",
        {"type": "string"},
        "The `ETag` of an earlier answer: when the answer would be the same, it is a 304 without a body (cheap "
        "polling).",
    ),
    "InboxVersion": header(
        "X-Inbox-Version",
        {"type": "integer", "minimum": 0},
        "The inbox version the live stream (`GET /inbox/events`) last pushed the page: the answer is no 304 "
        "under an older one, whichever worker answers.",
    ),
}
IF_NONE_MATCH = _ref("parameters", "IfNoneMatch")
INBOX_VERSION = _ref("parameters", "InboxVersion")

NOT_MODIFIED = Response(
    "`If-None-Match` names the current `ETag`: nothing changed, no body.",
    headers={"ETag": ETAG},
    component="NotModified",
)
BAD_PARAMETER = Response(
    "A query parameter is invalid; `parameter` names it and `message` says what is allowed.",
    {
        "application/json": {
            "allOf": [
                {"$ref": REF_TEMPLATE.format(model="Error")},
                {"required": ["parameter"], "properties": {"error": {"const": "invalid_parameter"}}},
            ]
        }
    },
    component="BadParameter",
)
INVALID_BODY = Response(
    "The JSON body is missing, not JSON, or has an unknown field or a wrong value (`invalid_body`); `message` says "
    "which. Nothing is changed.",
    {"application/json": error_schema("invalid_body")},
    component="InvalidBody",
)
UNAUTHORIZED = Response(
    "No credentials, a malformed `Authorization` header, or an unknown, revoked or expired token.",
    {"application/json": error_schema("unauthorized")},
    {"WWW-Authenticate": _ref("headers", "WwwAuthenticate")},
    component="Unauthorized",
)
NOT_FOUND = Response(
    "No conversation with that id.", {"application/json": error_schema("not_found")}, component="NotFound"
)
DATABASE_UNAVAILABLE = Response(
    "The database is unreachable or its connection pool is exhausted; nothing was written. Retry after "
    "`Retry-After` seconds (Meta does so by itself for the webhook).",
    {"application/json": error_schema("database_unavailable")},
    {"Retry-After": RETRY_AFTER},
    component="DatabaseUnavailable",
)
GRAPH_FAILURE = Response(
    "Graph refused the message or could not be reached (`graph_error`). The message is kept as `failed` with "
    "Meta's code and reason (`stored_message`) and can be retried.",
    {"application/json": SendFailure},
    {"Idempotent-Replayed": IDEMPOTENT_REPLAYED},
    component="GraphFailure",
)
RATE_LIMITED = Response(
    "Too many requests (`rate_limited`): wait `Retry-After` seconds. The API allows `RATELIMIT_API` (600 per "
    "minute) per token, agent or address; the webhook counts only failed signature checks, "
    "`RATELIMIT_WEBHOOK_BAD_SIGNATURE` (30 per minute) per address, so validly signed deliveries are never "
    "limited.",
    {"application/json": error_schema("rate_limited")},
    {"Retry-After": RETRY_AFTER},
    component="RateLimited",
)
RATE_LIMITED_PAGE = Response(
    "Too many requests, as an HTML page with `Retry-After`: pages allow `RATELIMIT_PAGES` (300 per minute) per "
    "agent or address; failed logins are limited per account (`RATELIMIT_LOGIN_ACCOUNT`, 5 per 5 minutes) and per "
    "address (`RATELIMIT_LOGIN_ADDRESS`, 30 per 5 minutes), which also holds back `/logout` from that address.",
    {"text/html": {"type": "string"}},
    {"Retry-After": RETRY_AFTER},
    component="RateLimitedPage",
)
INTERNAL_ERROR = Response(
    "An unexpected failure; it is logged, and the transaction is rolled back.",
    {"application/json": error_schema("internal_error")},
    component="InternalError",
)

# What every API operation may answer besides its own statuses.
API_ERRORS: dict[int, Response] = {401: UNAUTHORIZED, 429: RATE_LIMITED, 500: INTERNAL_ERROR, 503: DATABASE_UNAVAILABLE}

# The pages' shared answers.
LOGIN_REDIRECT = empty("Not logged in; redirect to the login page.", headers={"Location": LOCATION})
CSRF_FAILED_PAGE = html("The CSRF token is missing or stale.")
NOT_ADMIN = html("The agent is not an admin.")
BACK_TO_ADMIN = empty("Done (or refused with a message); back to the admin page.", headers={"Location": LOCATION})
FRAGMENT = html("An HTML fragment, with an `ETag`.")
FRAGMENT_UNCHANGED = empty("Unchanged since the ETag sent.")
# The inbox page's and its list fragment's filters (unknown values fall back to the defaults).
PAGE_FILTERS = (
    query("tab", {"type": "string", "enum": ["mine", "unassigned", "all"], "default": "all"}),
    query("status", {"type": "string", "enum": [*CONVERSATION_STATUSES, "all"], "default": "open"}),
    query("q", {"type": "string"}, "Search by name or number (first 100 characters)."),
    query("label", {"type": "integer", "minimum": 1}, "Only conversations carrying this label."),
    query("page", {"type": "integer", "minimum": 1, "default": 1}),
)

# Path parameters described by name unless an operation says more (`path=` of `@documented`).
PATH_DESCRIPTIONS = {
    "conversation_id": "The conversation's id (digits only). Ids that do not exist, including any above "
    "2147483647, answer 404.",
    "label_id": "The label's id (digits only). Ids that do not exist answer 404.",
    "mention_id": "The mention's id (digits only). Ids that do not exist answer 404.",
}

INFO: dict[str, Any] = {
    "title": "WhatsApp Business inbox",
    "version": "1.0.0",
    "summary": "Meta's WhatsApp Cloud API webhook, the inbox's JSON API, its pages, and health checks.",
    "description": """\
Every route the application registers, generated from the routes and their declarations
(`app/api/docs.py`). `tests/test_openapi.py` checks that this document lists exactly the
registered routes and methods, and that real answers validate against the response schemas below.

* **Webhook** (`/webhook/whatsapp`): Meta's verify handshake and signed deliveries. A 200
  means the delivery is committed; a 503 with `Retry-After` means nothing was stored and
  Meta should deliver again.
* **API** (`/whatsapp/api/…`, paths in Spanish for the existing front end): the
  conversation list, one conversation, its thread, sending (free text inside the 24-hour
  window, approved templates at any time), retrying failed sends, triage, notes, canned
  responses, templates and media. Authenticate with `Authorization: Bearer <token>`
  (`flask --app wsgi agents token EMAIL`) or the session cookie of a logged-in agent.
* **Health** (`/healthz`, `/readyz`) for the platform's probes, and Prometheus metrics
  (`/metrics`, with its own bearer token).
* **Pages** (`/`, `/login`, `/logout`, the inbox's fragments, `/admin/…`, hashed assets):
  the agents' server-rendered inbox, listed so the document covers every route; their
  answers are HTML.

Timestamps are RFC 3339 strings (UTC, `Z`). Any answer may be a 503
`database_unavailable` with `Retry-After` while the database is unreachable or its
connection pool is exhausted: retry after that many seconds. Unexpected failures are a
500 `internal_error` JSON body, never a stack trace. Request bodies over 4 MB are refused
with 413 on every route, except a file sent with `multipart/form-data` to `sendMessage`
(up to 100 MB, WhatsApp's largest document, plus 1 MB for the form). Rate limits answer
429 `rate_limited` with `Retry-After`.

Every answer carries `X-Request-ID`: the caller's own when it is 1–128 characters of
`A-Za-z0-9._:-`, else a new one; it is in every log line of that request.
""",
}

TAGS: tuple[tuple[str, str], ...] = (
    ("webhook", "Meta's WhatsApp Cloud API webhook."),
    ("conversations", "Reading the inbox (the conversation list, a conversation, its thread)."),
    ("sending", "Sending agents' messages through Meta's Graph API."),
    ("actions", "Working a conversation (read, triage, notes, bulk actions) and canned responses."),
    ("labels", "Labels on conversations, defined by admins."),
    ("media", "Files of messages, streamed from WhatsApp."),
    ("templates", "Message templates approved by Meta."),
    ("settings", "Business hours and the automatic replies (the away message, the greeting)."),
    ("me", "The caller's own account: preferences (language, time zone, notifications) and mentions."),
    ("reports", "Response and resolution times, volumes by day and hour, the backlog (JSON and CSV)."),
    ("health", "Liveness and readiness probes, and metrics."),
    ("docs", "This document."),
    ("pages", "The agents' server-rendered HTML pages (Flask-Login session, CSRF-protected forms)."),
)


# --- building the document -------------------------------------------------------------------------


def openapi_document(app: Flask) -> dict[str, Any]:
    """The document of `app`, built on first use and kept. Shared by every request: read-only."""
    document = app.extensions.get(EXTENSION_KEY)
    if document is None:
        document = app.extensions[EXTENSION_KEY] = build_document(app)
    return document


def build_document(app: Flask) -> dict[str, Any]:
    """A fresh document of every rule and method of `app` (see the module's docstring)."""
    builder = _Builder()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":  # Flask's own; the pages use the hashed /assets URLs
            continue
        view = app.view_functions[rule.endpoint]
        declared: Sequence[Operation] = getattr(view, DECLARATION, ())
        for method in sorted((rule.methods or set()) - IMPLICIT_METHODS):
            matching = [op for op in declared if op.method in (method, None)]
            if len(matching) != 1:
                raise LookupError(
                    f"{method} {rule.rule} ({rule.endpoint}): {len(matching)} @documented declarations, need 1"
                )
            builder.add(rule, method, view, matching[0])
    unused = set(INPUTS) - builder.operation_ids
    if unused:
        raise LookupError(f"INPUTS names operations no view declares: {sorted(unused)}")
    return builder.document()


class _Builder:
    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}
        self.responses: dict[str, Any] = {}
        self.operation_ids: set[str] = set()
        for model in RESPONSE_MODELS:
            self.schemas.update(component_schemas(model))
        self.schemas.update(copy.deepcopy(JSON_SCHEMAS))

    def document(self) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": copy.deepcopy(INFO),
            "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
            "tags": [{"name": name, "description": description} for name, description in TAGS],
            "paths": self.paths,
            "components": {
                "securitySchemes": copy.deepcopy(SECURITY_SCHEMES),
                "parameters": copy.deepcopy(PARAMETERS),
                "headers": copy.deepcopy(HEADERS),
                "responses": self.responses,
                "schemas": self.schemas,
            },
        }

    def add(self, rule: Rule, method: str, view: Callable[..., Any], declared: Operation) -> None:
        if declared.operation_id in self.operation_ids:
            raise ValueError(f"operationId {declared.operation_id} is declared twice")
        self.operation_ids.add(declared.operation_id)
        summary, _, description = (inspect.getdoc(view) or "").partition("\n")
        summary = declared.summary if declared.summary is not None else summary.strip()
        description = declared.description if declared.description is not None else description.strip()
        if not summary:
            raise ValueError(f"{method} {rule.rule}: the view has no docstring and no summary")
        operation: dict[str, Any] = {"tags": [declared.tag], "operationId": declared.operation_id, "summary": summary}
        if description:
            operation["description"] = description
        operation["security"] = [dict(s) for s in declared.security]

        parameters: list[dict[str, Any]] = [*_path_parameters(rule, declared)]
        parameters += [copy.deepcopy(dict(p)) for p in declared.parameters]
        query_model, body_model = INPUTS.get(declared.operation_id, (None, None))
        if query_model is not None:
            parameters = [p for p in parameters if p.get("in") != "query"] + query_parameters(query_model)
        if parameters:
            operation["parameters"] = parameters
        # The JSON body of `INPUTS`, and beside it (or alone) the declared ones (a multipart form).
        content: dict[str, Any] = {}
        if body_model is not None:
            content["application/json"] = {"schema": self.schema(body_model)}
        if declared.body is not None:
            for media, s in declared.body.content.items():
                content[media] = {"schema": self.schema(s)}
                if media in declared.body.encoding:
                    content[media]["encoding"] = copy.deepcopy(dict(declared.body.encoding[media]))
        if content:
            body: dict[str, Any] = {"required": True if body_model is not None else declared.body.required}  # type: ignore[union-attr]
            if declared.body is not None and declared.body.description:
                body["description"] = declared.body.description
            body["content"] = content
            operation["requestBody"] = body
        operation["responses"] = {
            str(status): self.response(response) for status, response in sorted(declared.responses.items())
        }
        self.paths.setdefault(openapi_path(rule), {})[method.lower()] = operation

    def schema(self, schema: Any) -> Any:
        """A copy of `schema` where every pydantic model (also nested, as in `{"oneOf": [A, B]}`) is
        a `$ref` to its component."""
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            self.schemas.update(component_schemas(schema))
            return {"$ref": REF_TEMPLATE.format(model=schema.__name__)}
        if isinstance(schema, Mapping):
            return {key: self.schema(value) for key, value in schema.items()}
        if isinstance(schema, list | tuple):
            return [self.schema(value) for value in schema]
        return copy.deepcopy(schema)

    def response(self, response: Response) -> dict[str, Any]:
        built: dict[str, Any] = {"description": response.description}
        if response.headers:
            built["headers"] = copy.deepcopy(dict(response.headers))
        if response.content:
            built["content"] = {media: {"schema": self.schema(s)} for media, s in response.content.items()}
        if response.component is None:
            return built
        if self.responses.setdefault(response.component, built) != built:
            raise ValueError(f"two different responses are named {response.component}")
        return _ref("responses", response.component)


def openapi_path(rule: Rule) -> str:
    """`/conversaciones/<id:conversation_id>` → `/conversaciones/{conversation_id}`."""
    return RULE_ARGUMENT.sub(r"{\1}", rule.rule)


def _path_parameters(rule: Rule, declared: Operation) -> list[dict[str, Any]]:
    parameters = []
    for name, converter in rule._converters.items():  # Werkzeug keeps them only there
        description = declared.path.get(name) or PATH_DESCRIPTIONS.get(name)
        parameters.append(_parameter(name, "path", converter_schema(converter), description, True))
    return parameters


def converter_schema(converter: BaseConverter) -> dict[str, Any]:
    """What a route converter lets through, as JSON Schema (anything else is 404)."""
    if isinstance(converter, IdConverter):
        return {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    if isinstance(converter, BigIdConverter):
        return {"type": "integer", "minimum": 1, "maximum": MAX_BIG_ID}
    if isinstance(converter, PathConverter | UnicodeConverter):
        return {"type": "string", "minLength": 1}
    raise TypeError(f"no OpenAPI schema for the route converter {type(converter).__name__}")


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI parameters (empty values mean the default)."""
    properties = model.model_json_schema(ref_template=REF_TEMPLATE)["properties"]
    parameters = []
    for name, model_field in model.model_fields.items():
        schema = {k: v for k, v in copy.deepcopy(properties[name]).items() if k not in ("title", "description")}
        _drop_impossible_defaults(schema)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "allowEmptyValue": True}
        if model_field.description:
            parameter["description"] = model_field.description
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def component_schemas(model: type[BaseModel]) -> dict[str, Any]:
    """A model and the models it uses, as `components/schemas` entries."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    definitions = schema.pop("$defs", {})
    _drop_impossible_defaults(schema)
    _drop_impossible_defaults(definitions)
    _link_components(schema)
    _link_components(definitions)
    return {**definitions, model.__name__: schema}


def _link_components(node: Any) -> None:
    """`{"x-component": "Message"}` (a schema pydantic cannot reference) becomes its `$ref`."""
    if isinstance(node, dict):
        if "x-component" in node:
            # Only a description may stay beside the $ref (pydantic adds a title).
            ref = REF_TEMPLATE.format(model=node.pop("x-component"))
            description = node.get("description")
            node.clear()
            node["$ref"] = ref
            if description:
                node["description"] = description
        for value in node.values():
            _link_components(value)
    elif isinstance(node, list):
        for value in node:
            _link_components(value)


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(isinstance(s, dict) and _allows_null(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


def _drop_impossible_defaults(node: Any) -> None:
    """`default: null` on a field that cannot be null means "absent" to pydantic; OpenAPI would
    read it as a value the schema refuses, so it goes."""
    if isinstance(node, dict):
        if "default" in node and node["default"] is None and not _allows_null(node):
            del node["default"]
        for value in node.values():
            _drop_impossible_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_impossible_defaults(value)
