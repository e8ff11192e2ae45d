"""The OpenAPI 3.1 document of every route, built once per process.

What the API accepts is generated from the pydantic models the views validate with
(`app/api/schemas.py`, `INPUTS`): the query parameters and the request-body schemas of those
operations come from the models, so the documentation cannot drift from the validation. The
error bodies come from the models of `app/api/responses.py`. The rest — the data answers,
headers, security, the non-JSON routes (webhook, pages, assets, admin forms, health,
metrics) — is still written in `app/api/openapi.yaml`.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from app.api.responses import RESPONSE_MODELS
from app.api.schemas import INPUTS

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
REF_TEMPLATE = "#/components/schemas/{model}"


@cache
def openapi_document() -> dict[str, Any]:
    """The document. Shared by every request: treat it as read-only."""
    with OPENAPI_PATH.open(encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    if not isinstance(document, dict):
        raise TypeError(f"{OPENAPI_PATH} is not a mapping")
    operations = {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in RESPONSE_MODELS:
        schemas.update(component_schemas(model))
    for operation_id, (query, body) in INPUTS.items():
        operation = operations[operation_id]  # a KeyError here: INPUTS names an undocumented operation
        if query is not None:
            operation["parameters"] = [
                *(p for p in operation.get("parameters", []) if p.get("in") != "query"),
                *query_parameters(query),
            ]
        if body is not None:
            schemas.update(component_schemas(body))
            operation["requestBody"] = {
                **operation.get("requestBody", {}),
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=body.__name__)}}},
            }
    return document


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI parameters (empty values mean the default)."""
    properties = model.model_json_schema(ref_template=REF_TEMPLATE)["properties"]
    parameters = []
    for name, field in model.model_fields.items():
        schema = {k: v for k, v in copy.deepcopy(properties[name]).items() if k not in ("title", "description")}
        _drop_impossible_defaults(schema)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "allowEmptyValue": True}
        if field.description:
            parameter["description"] = field.description
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def component_schemas(model: type[BaseModel]) -> dict[str, Any]:
    """A body model and the models it uses, as `components/schemas` entries."""
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
