"""The baseline for `bench/media_serve_benchmark.py`: the plainest way to serve a file with Flask.

`GET /file`: `flask.send_file` of one file (`MEDIA_BASELINE_FILE`) with `conditional=True`, so
`Range` answers 206 and an `ETag` is sent — what a static file server does, and nothing else: no
authentication, no database, no logging, metrics or rate limiting. The whole file goes out
through `wsgi.file_wrapper` (gunicorn's sendfile); a range through Werkzeug's range wrapper.

Served by its own gunicorn with the same settings as the app (gunicorn.conf.py, Render's
GUNICORN_CMD_ARGS). Run: `gunicorn … bench.baselines_media:app` with MEDIA_BASELINE_FILE.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, send_file


def create_app(path: str | None = None) -> Flask:
    file_path = path or os.environ["MEDIA_BASELINE_FILE"]
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.get("/file")
    def file() -> Any:
        return send_file(file_path, mimetype="image/jpeg", conditional=True, etag=True, max_age=86400)

    return app


app = create_app() if os.environ.get("MEDIA_BASELINE_FILE") else None
