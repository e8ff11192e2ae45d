"""Route converters that bound ids at the edge: an impossible id is 404 before a view runs.

`<id:conversation_id>` takes 1 … 2,147,483,647 (PostgreSQL `integer`: conversations, agents,
templates, canned responses); `<bigid:message_id>` takes 1 … 2**63 - 1 (`bigint`: messages).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """A positive PostgreSQL `integer` primary key."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)


class BigIdConverter(IntegerConverter):
    """A positive PostgreSQL `bigint` primary key."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_BIG_ID)


def init_converters(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["bigid"] = BigIdConverter
