"""Declared input for the API's views: spectree runs the pydantic models of `app/api/schemas.py`.

`@accepts("<operationId>")` goes under `@api_auth_required`, so credentials are checked
before input (a caller without them learns nothing about the parameters) and the CSRF
exemption and per-blueprint rate limits stay as they are. The models of each operation are
declared once, in `schemas.INPUTS`; the view receives them validated as its `query` and
`json` arguments, and `app/api/docs.py` documents the same models.

Refusals keep the API's answers: a bad query parameter is 400
`{"error": "invalid_parameter", "parameter", "message"}`; a body that is not JSON, not an
object or not valid is 400 `invalid_body` — raised as domain errors, so the blueprint's one
error handler (`app/api/errors.py`) answers them.

Before any model sees a body, `checked_body()` refuses what no model could hold and what
would otherwise break further down: JSON nested deeper than `MAX_BODY_DEPTH` (the parser, the
validation and the error answers all recurse) and lone surrogates such as `"\\ud800"`, which
JSON may escape but UTF-8 — PostgreSQL, the logs, Graph — cannot carry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from functools import wraps
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, RootModel, ValidationError
from spectree import SpecTree

from app.api.schemas import INPUTS
from app.services.errors import Invalid, InvalidParameter

# Generates nothing by itself and registers no route: the document is served by
# `GET /whatsapp/api/openapi.json` (app/api/docs.py). Strict mode: only the routes declared
# here are described from models.
spec = SpecTree(
    "flask",
    mode="strict",
    annotations=False,
    title="WhatsApp Business inbox",
    version="1.0.0",
    openapi_version="3.1.0",
)


# The API's own bodies nest four levels at most (a template's parameters); this leaves room
# for anything a client may add by mistake, and stays far below the recursion limit.
MAX_BODY_DEPTH = 32
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
Form = TypeVar("Form", bound=BaseModel)


def _strings(data: Any) -> Iterator[tuple[list[str], str, bool]]:
    """Every string of a parsed JSON value, keys included: (path, text, is_key). Iterative:
    the value may be nested as deep as the parser allowed. Refuses a value nested deeper than
    `MAX_BODY_DEPTH`."""
    stack: list[tuple[list[str], Any]] = [([], data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value, False
        elif isinstance(value, dict | list):
            if len(path) >= MAX_BODY_DEPTH:
                raise Invalid(f"The body is nested too deeply (at most {MAX_BODY_DEPTH} levels).")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    yield path, key, True
                stack.append(([*path, str(key)], item))


def checked_body() -> Any:
    """The request's JSON body (None when it is not JSON), once it is known to be safe to
    validate, store and log: `Invalid` for JSON nested deeper than `MAX_BODY_DEPTH` or
    holding a lone surrogate (in a value or a key)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # deeper than the parser can go: the value is never built
        raise Invalid(f"The body is nested too deeply (at most {MAX_BODY_DEPTH} levels).") from None
    for path, text, is_key in _strings(data):
        if _LONE_SURROGATE.search(text) is None:
            continue
        name = ".".join(path)
        if is_key:
            where = f"A field name in '{name}'" if name else "A field name"
        else:
            where = f"'{name}'" if name else "The body"
        raise Invalid(
            f"{where} holds a lone surrogate (such as \\ud800 without its pair): text must be valid Unicode.",
            field=name if name and not is_key else None,
        )
    return data


def _reason(error: Mapping[str, Any]) -> str:
    """One pydantic error as the API words it (without the field's name)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("missing",):
        return "is required."
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number."
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}."
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}."
    if kind in ("string_too_long", "too_long"):
        return f"must be at most {ctx['max_length']} characters."
    if kind in ("string_too_short", "string_type"):
        return "must be a non-empty string."
    if kind == "string_pattern_mismatch":
        return "has characters or a length that are not allowed."
    if kind == "literal_error":
        return f"must be {ctx['expected']}."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object."
    if kind == "extra_forbidden":
        return "is not a field of this request."
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false."
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"must be {ctx.get('expected_tags', 'one of the documented values')}."
    return str(error["msg"]).removeprefix("Value error, ")


def _refusal(error: ValidationError, query: type[BaseModel] | None, json: type[BaseModel] | None) -> Invalid:
    errors = error.errors(include_url=False)
    first = errors[0]
    locs = [[str(p) for p in e["loc"]] for e in errors]
    if query is not None and error.title == query.__name__:
        name = locs[0][0] if locs[0] else "query"
        return InvalidParameter(name, f"'{name}' {_reason(first)}")
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return Invalid(f"'type' {_reason(first)}", field="type")
    if json is not None and issubclass(json, RootModel):
        locs = [loc[1:] for loc in locs]  # a discriminated union names the chosen member first
    loc = locs[0]
    if len(errors) > 1 and len(loc) > 1 and all(other[:-1] == loc[:-1] for other in locs):
        # Every member of a union refused the value (text or a number): name the value.
        name = ".".join(loc[:-1])
        return Invalid(f"'{name}' has a type that is not allowed.", field=name)
    if not loc:
        return Invalid(_reason(first))
    name = ".".join(loc)
    return Invalid(f"'{name}' {_reason(first)}", field=name)


def validated_form(model: type[Form], data: Mapping[str, Any]) -> Form:
    """A form's fields (multipart uploads, which spectree does not run) through their model, refused
    in the same words as a JSON body (400 `invalid_body` naming the field)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise _refusal(error, None, model) from None


def _before_hook(query: type[BaseModel] | None, json: type[BaseModel] | None) -> Callable[..., None]:
    def before(req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any) -> None:
        if json is not None:
            data = request.get_json(silent=True)
            if data is None:
                raise Invalid("The body must be JSON (Content-Type: application/json).")
            if not isinstance(data, dict):
                raise Invalid("The body must be a JSON object.")
        if isinstance(error, ValidationError):
            raise _refusal(error, query, json)
        if error is not None:
            raise Invalid(str(error))

    return before


def accepts(operation: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Validate the query string and/or JSON body with the models `schemas.INPUTS` gives this
    operation before the view runs; the view gets them as its `query` / `json` arguments.
    `options` go to spectree's `validate` (`tags`…)."""
    query, json = INPUTS[operation]

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def with_input(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = request.context.query  # type: ignore[attr-defined]
            if json is not None:
                kwargs["json"] = request.context.json  # type: ignore[attr-defined]
            return view(*args, **kwargs)

        validated = spec.validate(
            query=query,
            json=json,
            before=_before_hook(query, json),
            validation_error_status=400,
            operation_id=operation,
            **options,
        )(with_input)
        if json is None:
            return validated

        @wraps(validated)  # keeps spectree's marks on the view (the OpenAPI document reads them)
        def body_checked_first(*args: Any, **kwargs: Any) -> Any:
            # spectree parses the body itself before any hook runs: check it first. The parsed
            # body is cached on the request, so it is parsed once.
            checked_body()
            return validated(*args, **kwargs)

        return body_checked_first

    return decorate
