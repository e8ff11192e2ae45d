"""Flask's JSON answers encoded by orjson, with the same output as Flask's own provider.

`jsonify` and every `return dict` go through `app.json`; Flask's `DefaultJSONProvider` encodes
with the standard library (sorted keys, compact, a trailing newline), which costs about a
millisecond for a page of 50 conversations. orjson (C, maintained) encodes the same documents
several times faster. The output keeps Flask's conventions, so the API's JSON does not change:

- keys sorted, compact separators outside debug (indented by 2 in debug), a trailing newline;
- `datetime`/`date` are not formatted by orjson (whose ISO format differs): they reach Flask's
  own `default` (an HTTP date), as before. The API formats its times itself
  (`app/api/serializers.iso`, ISO 8601 with "Z");
- decimals, dataclasses and `__html__` objects go through Flask's `default` too;
- integer dict keys are written as strings, as the standard library does.

What orjson refuses (integers beyond 64 bits, say, inside a stored raw payload) is encoded by the
standard library instead, so nothing that was answered before fails now. Parsing request bodies
and `app.json.dumps` (the templates' `tojson`) stay with Flask's provider: only answers change
encoder. Non-ASCII characters are written as UTF-8 rather than `\\u` escapes (the same JSON).
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_OPTIONS |= orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


class OrjsonProvider(DefaultJSONProvider):
    def _encode(self, obj: Any, indent: bool) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0))
        except TypeError:  # what orjson cannot encode: the standard library, as Flask does
            if indent:
                return super().dumps(obj, indent=2).encode()
            return super().dumps(obj, separators=(",", ":")).encode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        indent = self.compact is False or (self.compact is None and self._app.debug)
        body: Any = self._encode(obj, indent) + b"\n"
        return cast("Response", self._app.response_class(body, mimetype=self.mimetype))


def init_json(app: Flask) -> None:
    app.json = OrjsonProvider(app)
