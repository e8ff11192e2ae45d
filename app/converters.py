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


def _up_to(maximum: int) -> str:
    """A regex for the whole numbers 1 … `maximum` (leading zeros allowed, as `int` allows).

    The bound is in the regex, not only in `to_python`: Werkzeug matches the path first and
    converts afterwards, so an id rejected only by `to_python` on a path that another method's
    rule shares (GET and PATCH of a conversation) would answer 405 instead of 404.
    """
    digits = str(maximum)
    alternatives = [rf"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            alternatives.append(rf"{digits[:i]}[{low}-{int(digit) - 1}]" + (rf"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "0*(?:" + "|".join(alternatives) + ")"


class IdConverter(IntegerConverter):
    """A positive PostgreSQL `integer` primary key."""

    regex = _up_to(MAX_ID)

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)


class BigIdConverter(IntegerConverter):
    """A positive PostgreSQL `bigint` primary key."""

    regex = _up_to(MAX_BIG_ID)

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_BIG_ID)


def init_converters(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["bigid"] = BigIdConverter
