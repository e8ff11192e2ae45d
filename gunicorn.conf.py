"""gunicorn settings for Render's 512 MB instances (and the benchmarks and live tests).

Render sets GUNICORN_CMD_ARGS="--preload ..." which gunicorn applies after this file, so the
app may be imported in the master before forking: `post_fork` drops any connection the
master opened, so no PostgreSQL connection is ever shared between processes.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '10000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 25  # inside Render's default 30 s shutdown delay
keepalive = 5
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
max_requests = 1000
max_requests_jitter = 100


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    # Imported here, in the worker after the fork: the same module object --preload built.
    import wsgi
    from app.extensions import db

    with wsgi.app.app_context():
        db.engine.dispose(close=False)
