"""The OpenAPI 3.1 document of every route (app/api/openapi.yaml), read once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


@cache
def openapi_document() -> dict[str, Any]:
    """The parsed document. Shared by every request: treat it as read-only."""
    with OPENAPI_PATH.open(encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    if not isinstance(document, dict):
        raise TypeError(f"{OPENAPI_PATH} is not a mapping")
    return document
