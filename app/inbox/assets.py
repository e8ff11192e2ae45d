"""Static assets under content-hashed URLs, cached by browsers for a year.

`asset_url("css/app.css")` gives `/assets/<first 12 hex of sha256>/css/app.css`. A file's URL
changes whenever its bytes do, so it can be `immutable`; a stale hash (a page rendered before a
deploy) still gets the current file, but with `no-cache`. Everything comes from `static/`:
no CDN, the inbox works on a locked-down network.
"""

from __future__ import annotations

import hashlib
import stat as file_stat
import threading
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from werkzeug.security import safe_join

from app.api.docs import PUBLIC, Response, documented, html

bp = Blueprint("assets", __name__)

ONE_YEAR = 365 * 24 * 3600
_digests: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def _static_root() -> Path:
    return Path(current_app.static_folder or "static")


def digest(filename: str) -> str | None:
    """Content hash of a static file (cached per size and modification time), or None."""
    joined = safe_join(str(_static_root()), filename)
    if joined is None:
        return None
    path = Path(joined)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not file_stat.S_ISREG(stat.st_mode):
        return None  # a directory (`/assets/<v>/audio`) is no asset: 404, not a read that fails
    key = (filename, stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _digests.get(key)
    if cached is None:
        cached = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        with _lock:
            _digests[key] = cached
    return cached


def asset_url(filename: str) -> str:
    found = digest(filename)
    if found is None:
        raise FileNotFoundError(f"static/{filename} does not exist")
    return url_for("assets.asset", version=found, filename=filename)


@bp.get("/assets/<version>/<path:filename>")
@documented(
    "asset",
    tag="pages",
    security=PUBLIC,
    responses={
        200: Response("The file.", {"*/*": {"type": "string", "format": "binary"}}),
        404: html("No such file."),
    },
)
def asset(version: str, filename: str) -> ResponseReturnValue:
    """A static file (CSS, JavaScript, icons) under a content-hashed URL

    `version` is the first 12 hex digits of the file's SHA-256. When it matches, the answer
    is cached for a year (`immutable`); an older hash still gets the current file, with
    `no-cache`.
    """
    current = digest(filename)
    if current is None:
        abort(404)
    response = send_from_directory(_static_root(), filename, max_age=ONE_YEAR if version == current else 0)
    if version == current:
        response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def init_assets(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["asset_url"] = asset_url
