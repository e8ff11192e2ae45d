"""The repository's gunicorn.conf.py, plus cProfile inside every worker (the ingest benchmark's
`--profile` run; never used for the figures that are compared with a baseline).

Every request runs under a per-thread `cProfile.Profile` timed by the thread's CPU clock
(`time.thread_time`: time blocked on PostgreSQL or waiting for the GIL is not counted), since
gthread serves requests on a pool of threads and cProfile sees only the thread that enabled it. When a worker exits
(max_requests or shutdown) its threads' profiles are merged and dumped to
`$BENCH_PROFILE_DIR/worker-<pid>.prof`.
"""

import cProfile
import os
import threading
import time
from pathlib import Path

_project_conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
exec(compile(_project_conf.read_text(), str(_project_conf), "exec"))  # the same settings and hooks

_project_post_worker_init = globals().get("post_worker_init")
_project_worker_exit = globals().get("worker_exit")
_profiles: list[cProfile.Profile] = []
_local = threading.local()
_lock = threading.Lock()


def _profiler() -> cProfile.Profile:
    profiler = getattr(_local, "profiler", None)
    if profiler is None:
        profiler = _local.profiler = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append(profiler)
    return profiler


def _profiled(wsgi):  # type: ignore[no-untyped-def]
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        profiler = _profiler()
        profiler.enable()
        try:
            return list(wsgi(environ, start_response))  # the body is produced inside the profile
        finally:
            profiler.disable()

    return app


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    if _project_post_worker_init is not None:
        _project_post_worker_init(worker)
    worker.wsgi = _profiled(worker.wsgi)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    if _project_worker_exit is not None:
        _project_worker_exit(server, worker)
    import pstats

    with _lock:
        profiles = [p for p in _profiles if p.getstats()]
    if not profiles:
        return
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    directory = Path(os.environ.get("BENCH_PROFILE_DIR", "."))
    directory.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(directory / f"worker-{os.getpid()}.prof"))
