"""Benchmark of POST /webhook/whatsapp with media messages in the mix, their downloads running as jobs.

    .venv/bin/python -m bench.media_ingest_benchmark [--rounds 3] [--duration 8]   (or `make bench`)

Issue 11: inbound media is fetched by a background job queued in the webhook's transaction, so the
webhook itself never calls Graph and its latency does not change. This measures it: the same
gunicorn (production settings, `gunicorn.conf.py`, Render's `--preload`, and the jobs worker
started by its master as `JOBS_IN_WEB` does by default) receives, in alternating runs of the
same run,

* "text only": today's ingest workload (bench/ingest_benchmark.py, 1 message per delivery,
  10 % redeliveries);
* "30 % media": the same deliveries, but about 30 % of the new messages are an image
  (~180 KB), a voice note (~40 KB, `audio/ogg; codecs=opus`) or a PDF document (~350 KB),
  each with the sha256 Meta sends.

The jobs worker downloads every media message, while wrk is still posting and afterwards,
from the tests' fake Graph server (tests/fake_graph.py) served over TLS on 127.0.0.1
(bench/graph_tls.py: production settings send the token to https hosts only), checks its
sha256 and stores it on the local filesystem (`MEDIA_STORAGE_PATH` under bench/.data). After
every media run the benchmark waits for the queue to drain and reports how long that took,
how many media were stored (all of them, or it says so) and how many downloads Graph served
(once per media: no fetch twice).

Measured per run (wrk, as in the ingest benchmark): deliveries/s and p50 / p99 with
`--connections` connections for `--duration` seconds, p50 / p99 with one connection, CPU per
delivery of the web workers, of the jobs worker and of PostgreSQL; after every run the rows
are counted (exactly one per message). The database is a throw-away copy of the ingest
benchmark's (500 conversations × 10 messages). Results go to the "Webhook ingest with media"
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import text

from bench.common import (
    DATA_DIR,
    MAX_REQUESTS_TEXT,
    BenchGunicorn,
    BenchServer,
    PgStatStatements,
    StatementCount,
    TargetCheck,
    apply_bench_env,
    autocommit,
    code_revision,
    fmt_mb,
    fmt_ms,
    fmt_rps,
    load_average,
    log,
    md_table,
    median,
    memory_targets,
    percentile,
    prepare_database,
    publish,
    rounds_line,
    run_facts,
    setup_logging,
)
from bench.graph_tls import TlsFakeGraph, graph_env, make_certificates
from bench.ingest_benchmark import (
    INGEST_SCALE,
    PHONE_NUMBER_ID,
    SERVER_ENV,
    WEBHOOK_PATH,
    Check,
    Item,
    build_workload,
    check_stored,
    ensure_wrk,
    logged_errors,
    machine_busy,
    post_items,
    postmaster_pid,
    process_tree_cpu,
    run_wrk,
    write_workload,
)
from tests import meta

COPY_DATABASE = "inbox_bench_media_ingest"
WORK_DIR = DATA_DIR / "media-ingest"
MEDIA_SHARE = 0.3
KEYS = ("text", "media", "deferred")
SINGLE_KEYS = ("text", "media")  # the 1-connection runs
NAMES = {
    "text": "text only (today's workload)",
    "media": "30 % media",
    "deferred": "30 % media, downloads after the run",
}
# "Within noise": the webhook's own path with the media mix keeps ≥ 90 % of the text-only rate
# (the jobs worker paused while wrk posts, so only the webhook's work is measured), and a media
# delivery's p50 is within 15 % of a text delivery's, posted one by one in the same sequence.
TARGET_RATE_RATIO = 0.9
TARGET_LATENCY_RATIO = 1.15


@dataclass(frozen=True)
class MediaKind:
    type: str
    mime_type: str
    size: int
    weight: float
    magic: bytes
    extra: dict[str, Any]

    def content(self) -> bytes:
        body = random.Random(self.type).randbytes(self.size - len(self.magic))
        return self.magic + body


KINDS = (
    MediaKind("image", "image/jpeg", 180 * 1024, 0.45, b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", {"caption": "así llegó"}),
    MediaKind("audio", "audio/ogg; codecs=opus", 40 * 1024, 0.35, b"OggS\x00\x02", {"voice": True}),
    MediaKind("document", "application/pdf", 350 * 1024, 0.20, b"%PDF-1.7\n", {"filename": "factura 0042.pdf"}),
)


class MediaMix:
    """`messages_of` for build_workload: a text, or (MEDIA_SHARE of the time) an image, voice note
    or document whose file the fake Graph server holds under a fresh media id."""

    def __init__(self, graph: TlsFakeGraph, share: float = MEDIA_SHARE) -> None:
        self.graph = graph
        self.share = share
        self.files = {k.type: k.content() for k in KINDS}
        self.sha256 = {t: base64.b64encode(hashlib.sha256(c).digest()).decode() for t, c in self.files.items()}
        self.media_wamids: dict[str, str] = {}  # wamid → media type
        self._ids = itertools.count(int(time.time()) * 10_000)

    def __call__(self, prefix: str, n: int, per_delivery: int, wa_id: str, ts: int) -> list[dict[str, Any]]:
        rng = random.Random(f"{prefix}{n}")
        wamid = f"{prefix}{n}.0"
        if rng.random() >= self.share:
            return [meta.message(id=wamid, sender=wa_id, ts=ts, content={"body": f"Hola, consulta número {n}"})]
        kind = rng.choices(KINDS, weights=[k.weight for k in KINDS])[0]
        media_id = str(next(self._ids))
        self.graph.media[media_id] = (self.files[kind.type], kind.mime_type)
        self.media_wamids[wamid] = kind.type
        content = {"id": media_id, "mime_type": kind.mime_type, "sha256": self.sha256[kind.type], **kind.extra}
        return [meta.message(kind.type, id=wamid, sender=wa_id, ts=ts, content=content)]

    def media_in(self, items: list[Item], positions: list[int]) -> dict[str, int]:
        """Distinct media messages among the deliveries issued, by type."""
        seen = {w for p in positions for w in items[p].wamids if w in self.media_wamids}
        counts: dict[str, int] = {}
        for wamid in seen:
            counts[self.media_wamids[wamid]] = counts.get(self.media_wamids[wamid], 0) + 1
        return counts


# --- the jobs worker --------------------------------------------------------------------------


def jobs_worker(gunicorn: BenchGunicorn) -> psutil.Process | None:
    """The jobs worker gunicorn's master started (`flask --app wsgi jobs worker`)."""
    assert gunicorn.process is not None
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(gunicorn.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "jobs" in child.cmdline() and "worker" in child.cmdline():
                    return child
    return None


def cpu_of(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        t = process.cpu_times()
        return t.user + t.system
    return 0.0


def pg_cpu(pid: int | None) -> float:
    return process_tree_cpu(pid) if pid else 0.0


MEDIA_STATES = text(
    """
    SELECT media_state, count(*) FROM messages
     WHERE wamid LIKE :p AND media_state IS NOT NULL GROUP BY media_state
    """
)
QUEUE = text("SELECT status, count(*) FROM procrastinate_jobs WHERE queue_name = 'media' GROUP BY status")


def media_states(database_url: str, prefix: str) -> dict[str, int]:
    with autocommit(database_url) as conn:
        return {state: n for state, n in conn.execute(MEDIA_STATES, {"p": prefix + "%"}).all()}


def queued_jobs(database_url: str) -> dict[str, int]:
    with autocommit(database_url) as conn:
        return {str(status): n for status, n in conn.execute(QUEUE).all()}


def wait_for_drain(database_url: str, prefix: str, timeout: float) -> tuple[dict[str, int], float | None]:
    """Poll until no media of `prefix` is pending; the states then and the seconds it took."""
    started = time.perf_counter()
    while True:
        states = media_states(database_url, prefix)
        if not states.get("pending"):
            return states, time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            return states, None
        time.sleep(0.2)


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    rate: float
    p50: float
    p99: float
    requests: int
    deliveries: int
    cpu_web_ms: float  # per delivery, during wrk: gunicorn master + web workers
    cpu_jobs_ms: float  # per delivery, during wrk: the jobs worker
    cpu_pg_ms: float
    busy: float  # CPUs busy, whole machine, during wrk
    check: Check
    media: dict[str, int] = field(default_factory=dict)  # sent, by type
    pending_at_end: int = 0  # media not yet stored when wrk stopped
    queue_at_end: dict[str, int] = field(default_factory=dict)
    stored_during: int = 0  # stored while wrk was posting
    drain_s: float | None = None  # from wrk's end until nothing of the run is pending
    states: dict[str, int] = field(default_factory=dict)  # media states after the drain
    downloads: int = 0  # Graph downloads served for this run
    jobs_cpu_per_media_ms: float | None = None  # jobs worker CPU over run + drain, per media stored
    not_ok: int = 0
    socket_errors: int = 0

    @property
    def media_sent(self) -> int:
        return sum(self.media.values())

    @property
    def all_stored(self) -> bool:
        return self.states.get("stored", 0) == self.media_sent and set(self.states) <= {"stored"}


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        return [float(getattr(r, name)) for r in self.runs if getattr(r, name) is not None]

    def med(self, name: str) -> float | None:
        return median(self.values(name))


def one_run(
    wrk: str,
    gunicorn: BenchGunicorn,
    database_url: str,
    pg_pid: int | None,
    graph: TlsFakeGraph,
    mix: MediaMix,
    items: list[Item],
    path: Path,
    prefix: str,
    args: argparse.Namespace,
    connections: int,
    duration: float,
    pause_worker: bool = False,
) -> Run:
    """One wrk run, its rows checked, then (media) the wait until the queue drained. With
    `pause_worker` the jobs worker is stopped while wrk posts and continued afterwards."""
    assert gunicorn.process is not None
    worker = jobs_worker(gunicorn)
    if pause_worker and worker is not None:
        worker.suspend()
    downloads_before = graph.downloads()
    tree0, jobs0, pg0 = process_tree_cpu(gunicorn.process.pid), cpu_of(worker), pg_cpu(pg_pid)
    machine0 = psutil.cpu_times()
    threads = 1 if connections == 1 else args.wrk_threads
    try:
        result = run_wrk(wrk, gunicorn.base_url + WEBHOOK_PATH, path, threads, connections, duration, args.timeout)
    finally:
        ended = time.perf_counter()
        machine1 = psutil.cpu_times()
        tree1, jobs1, pg1 = process_tree_cpu(gunicorn.process.pid), cpu_of(worker), pg_cpu(pg_pid)
        if pause_worker and worker is not None:
            worker.resume()
    states_at_end = media_states(database_url, prefix)
    queue_at_end = queued_jobs(database_url)
    positions = result.issued_positions(threads, len(items))
    check = check_stored("ours", database_url, gunicorn.base_url, items, positions, prefix)
    issued = max(1, len(positions))
    busy, _steal = machine_busy(machine0, machine1)
    measured = Run(
        rate=result.rate,
        p50=result.latency_us["p50"] / 1000,
        p99=result.latency_us["p99"] / 1000,
        requests=result.requests,
        deliveries=issued,
        cpu_web_ms=((tree1 - tree0) - (jobs1 - jobs0)) * 1000 / issued,
        cpu_jobs_ms=(jobs1 - jobs0) * 1000 / issued,
        cpu_pg_ms=(pg1 - pg0) * 1000 / issued if pg_pid else 0.0,
        busy=busy,
        check=check,
        media=mix.media_in(items, positions),
        pending_at_end=states_at_end.get("pending", 0),
        queue_at_end=queue_at_end,
        stored_during=states_at_end.get("stored", 0),
        not_ok=result.not_ok,
        socket_errors=result.socket_errors,
    )
    if measured.media_sent:
        states, _took = wait_for_drain(database_url, prefix, args.drain_timeout)
        measured.drain_s = (time.perf_counter() - ended) if not states.get("pending") else None
        measured.states = states
        measured.downloads = graph.downloads() - downloads_before
        stored = states.get("stored", 0)
        if stored:
            measured.jobs_cpu_per_media_ms = (cpu_of(worker) - jobs0) * 1000 / stored
    else:
        measured.states = states_at_end
    return measured


def post_by_kind(base_url: str, items: list[Item], mix: MediaMix) -> dict[str, list[float]]:
    """Post a media-mix workload one delivery at a time (Python, one keep-alive connection) and
    time each new delivery by what it carries: a media message or a text, interleaved."""
    latencies: dict[str, list[float]] = {"text": [], "media": []}
    with requests.Session() as session:
        for item in items:
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": item.signature}
            t0 = time.perf_counter()
            response = session.post(base_url + WEBHOOK_PATH, data=item.body, headers=headers, timeout=30)
            took = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"a signed delivery answered {response.status_code}")
            if item.kind == "new":
                latencies["media" if item.wamids[0] in mix.media_wamids else "text"].append(took)
    return latencies


def count_statements(
    database_url: str, gunicorn: BenchGunicorn, graph: TlsFakeGraph, prefix: str, n: int = 40
) -> dict[str, StatementCount]:
    """SQL per delivery (pg_stat_statements) of `n` new text deliveries and `n` new deliveries of
    one media message each, posted one by one with the jobs worker stopped (its own statements
    would count too); it is continued afterwards and catches up."""
    stats = PgStatStatements(database_url)
    worker = jobs_worker(gunicorn)
    counts: dict[str, StatementCount] = {}
    try:
        if not stats.available:
            return counts
        if worker is not None:
            worker.suspend()
        for key in KEYS:
            factory = MediaMix(graph, share=1.0) if key == "media" else None
            items = [i for i in build_workload(f"{prefix}{key[0]}.", n + 20, 1, 11, factory) if i.kind == "new"]
            post_items(gunicorn.base_url, items[:5])  # the new customers of the sample, created first
            sample = items[5 : 5 + n]
            counts[key] = stats.count(lambda sample=sample: post_items(gunicorn.base_url, sample))
    finally:
        if worker is not None:
            worker.resume()
        stats.close()
    return counts


def describe(key: str, run: Run) -> str:
    line = f"  {key:<5} {run.rate:7.1f} deliveries/s  p50 {run.p50:7.2f} ms  p99 {run.p99:7.2f} ms"
    if run.media_sent:
        drained = f"{run.drain_s:.1f} s" if run.drain_s is not None else "NOT drained"
        line += (
            f"  media {run.media_sent} ({run.stored_during} stored during the run, {run.pending_at_end} pending at "
            f"its end), drained {drained}: {run.states}, {run.downloads} Graph downloads"
        )
    return line


# --- the benchmark -----------------------------------------------------------------------------


@dataclass
class Result:
    setup_note: str
    load: dict[str, Series]
    single: dict[str, Series]
    by_kind: dict[str, list[list[float]]]  # per round, the latencies (ms) of new deliveries by content
    statements: dict[str, StatementCount]
    memory: dict[str, dict[str, Any]]
    command: str
    workers: tuple[int, int]
    files: tuple[int, int]  # files under the storage directory, bytes
    media_rows: dict[str, int]
    downloads: int
    elapsed_s: float
    load_start: str
    load_end: str
    errors: dict[str, int]
    jobs_settings: str


def run(server: BenchServer, args: argparse.Namespace) -> Result:
    started = time.perf_counter()
    load_start = load_average()
    wrk = ensure_wrk()
    _template, setup_note = prepare_database(server, INGEST_SCALE, args.reseed)
    url = server.copy_database(INGEST_SCALE.database, COPY_DATABASE)
    setup_note += f"; measured on a fresh copy, {COPY_DATABASE} (CREATE DATABASE … TEMPLATE)"
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    storage = WORK_DIR / "storage"
    storage.mkdir(parents=True)
    graph = TlsFakeGraph(certificates=make_certificates(WORK_DIR / "tls"))
    mix = MediaMix(graph)
    gunicorn = BenchGunicorn(
        "media-ingest-app", "wsgi:app", url, {**SERVER_ENV, **graph_env(graph, storage, PHONE_NUMBER_ID)}
    )
    load = {k: Series() for k in KEYS}
    single = {k: Series() for k in SINGLE_KEYS}
    statements: dict[str, StatementCount] = {}
    by_kind: dict[str, list[list[float]]] = {"text": [], "media": []}
    run_id = f"{int(time.time()) % 100000}"
    pg_pid = postmaster_pid(url)

    def workload(key: str, prefix: str, count: int, seed: int) -> tuple[list[Item], Path]:
        items = build_workload(prefix, count, 1, seed, None if key == "text" else mix)
        path = DATA_DIR / f"media-ingest-{key}.tsv"
        write_workload(items, path)
        return items, path

    try:
        gunicorn.start()
        deadline = time.monotonic() + 30
        while jobs_worker(gunicorn) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if jobs_worker(gunicorn) is None:
            raise RuntimeError(f"gunicorn started no jobs worker; see {gunicorn.log_path}")
        # Warm-up: workers, threads, pools, the new customers' rows, the worker's Graph connections.
        for key in KEYS:
            prefix = f"wamid.mw{run_id}{key[0]}."
            items, path = workload(key, prefix, 1500, seed=3)
            warm = run_wrk(
                wrk, gunicorn.base_url + WEBHOOK_PATH, path, args.wrk_threads, args.connections, 2, args.timeout
            )
            positions = warm.issued_positions(args.wrk_threads, len(items))
            check_stored("ours", url, gunicorn.base_url, items, positions, prefix)
            if key == "media":
                wait_for_drain(url, prefix, args.drain_timeout)
        statements = count_statements(url, gunicorn, graph, f"wamid.mq{run_id}")
        wait_for_drain(url, f"wamid.mq{run_id}", args.drain_timeout)
        for round_no in range(args.rounds):
            log.info("media ingest: round %d/%d (load %s)", round_no + 1, args.rounds, load_average())
            order = KEYS if round_no % 2 == 0 else tuple(reversed(KEYS))
            for key in order:
                prefix = f"wamid.ml{run_id}r{round_no}{key[0]}."
                items, path = workload(key, prefix, int(args.duration * args.max_rate) + 2000, 1000 * round_no + 1)
                r = one_run(
                    wrk,
                    gunicorn,
                    url,
                    pg_pid,
                    graph,
                    mix,
                    items,
                    path,
                    prefix,
                    args,
                    args.connections,
                    args.duration,
                    pause_worker=key == "deferred",
                )
                load[key].runs.append(r)
                log.info("%s", describe(key, r))
            for key in (k for k in order if k in SINGLE_KEYS):
                prefix = f"wamid.ms{run_id}r{round_no}{key[0]}."
                items, path = workload(key, prefix, int(args.single_duration * 1500) + 500, 77 + round_no)
                r = one_run(wrk, gunicorn, url, pg_pid, graph, mix, items, path, prefix, args, 1, args.single_duration)
                single[key].runs.append(r)
                log.info("%s (1 connection)", describe(key, r))
            prefix = f"wamid.mk{run_id}r{round_no}."
            items, _path = workload("media", prefix, args.sequential, 500 + round_no)
            latencies = post_by_kind(gunicorn.base_url, items, mix)
            check_stored("ours", url, gunicorn.base_url, items, list(range(len(items))), prefix)
            wait_for_drain(url, prefix, args.drain_timeout)
            for kind, values in latencies.items():
                by_kind[kind].append(values)
            log.info(
                "  one by one, same run: text p50 %.2f ms (n=%d), media p50 %.2f ms (n=%d)",
                statistics.median(latencies["text"]),
                len(latencies["text"]),
                statistics.median(latencies["media"]),
                len(latencies["media"]),
            )
        media_rows = media_states(url, "wamid.m")
    finally:
        gunicorn.stop()
        graph.close()
        if not args.keep_database:
            server.drop_database(COPY_DATABASE)
    files = [p for p in storage.rglob("*") if p.is_file() and not p.name.startswith(".")]
    stored_files = (len(files), sum(p.stat().st_size for p in files))
    if not args.keep_files:
        shutil.rmtree(storage, ignore_errors=True)
    memory = {}
    if gunicorn.memory is not None:
        memory[f"this project, jobs worker inside ({gunicorn.name})"] = gunicorn.memory.as_dict()
    env = gunicorn.env
    return Result(
        setup_note=setup_note,
        load=load,
        single=single,
        by_kind=by_kind,
        statements=statements,
        memory=memory,
        command=gunicorn.command,
        workers=gunicorn.workers(),
        files=stored_files,
        media_rows=media_rows,
        downloads=graph.downloads(),
        elapsed_s=time.perf_counter() - started,
        load_start=load_start,
        load_end=load_average(),
        errors=logged_errors(gunicorn),
        jobs_settings=(
            f"JOBS_CONCURRENCY={env.get('JOBS_CONCURRENCY', '2 (default)')}, "
            f"JOBS_DB_POOL_SIZE={env.get('JOBS_DB_POOL_SIZE', '3 (default)')}"
        ),
    )


# --- report ------------------------------------------------------------------------------------


def _ratios(ours: list[float], base: list[float]) -> list[float]:
    return [o / b for o, b in zip(ours, base, strict=False) if b]


def _spread(values: list[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "—"
    return f"{fmt(min(values))}–{fmt(max(values))}"


def targets(result: Result) -> list[TargetCheck]:
    text_load, media_load, deferred_load = result.load["text"], result.load["media"], result.load["deferred"]
    rate_ratios = _ratios(deferred_load.values("rate"), text_load.values("rate"))
    rate_ratio = statistics.median(rate_ratios) if rate_ratios else 0.0
    with_downloads = _ratios(media_load.values("rate"), text_load.values("rate"))
    kind_p50 = {k: [statistics.median(v) if v else 0.0 for v in rounds] for k, rounds in result.by_kind.items()}
    p50_ratios = _ratios(kind_p50["media"], kind_p50["text"])
    p50_ratio = statistics.median(p50_ratios) if p50_ratios else float("inf")
    all_runs = [r for s in (*result.load.values(), *result.single.values()) for r in s.runs]
    media_runs = [r for r in all_runs if r.media_sent]
    drains = [r.drain_s for r in media_runs if r.drain_s is not None]
    sent = sum(r.media_sent for r in media_runs)
    stored = sum(r.states.get("stored", 0) for r in media_runs)
    downloads = sum(r.downloads for r in media_runs)
    checks = [
        TargetCheck(
            f"the webhook's own path: deliveries/s with 30 % media ≥ {TARGET_RATE_RATIO:g} × text only, under load "
            "(the downloads after the run)",
            f"{rate_ratio:.2f}× (per round {', '.join(f'{r:.2f}' for r in rate_ratios)}; text-only rounds "
            f"{_spread(text_load.values('rate'), fmt_rps)} /s, "
            f"media rounds {_spread(deferred_load.values('rate'), fmt_rps)} /s)",
            rate_ratio >= TARGET_RATE_RATIO,
        ),
        TargetCheck(
            "the worker downloading while wrk posts on the same 2 cores (PostgreSQL and the fake Graph too): "
            "deliveries/s with 30 % media against text only (reported, no threshold)",
            f"{statistics.median(with_downloads):.2f}× (per round {', '.join(f'{r:.2f}' for r in with_downloads)})"
            if with_downloads
            else "—",
            True,
        ),
        TargetCheck(
            f"p50 of a media delivery ≤ {TARGET_LATENCY_RATIO:g} × a text delivery's, posted one by one in the same "
            "sequence, the worker downloading meanwhile",
            f"{p50_ratio:.2f}× (per round {', '.join(f'{r:.2f}' for r in p50_ratios)}; "
            f"{fmt_ms(median(kind_p50['media']))} vs {fmt_ms(median(kind_p50['text']))} ms)",
            p50_ratio <= TARGET_LATENCY_RATIO,
        ),
        TargetCheck(
            "every media message of every run stored, once, and the queue drained",
            f"{stored:,} of {sent:,} stored, {downloads:,} Graph downloads, {len(drains)} of {len(media_runs)} runs "
            f"drained (slowest {max(drains):.1f} s after wrk stopped)"
            if drains
            else f"{stored:,} of {sent:,} stored; no run drained",
            stored == sent == downloads and len(drains) == len(media_runs),
        ),
        TargetCheck(
            "exactly one stored row per distinct message after every run",
            f"{len(all_runs)} runs checked",
            all(r.check.exact for r in all_runs),
        ),
    ]
    return checks + memory_targets(result.memory, "the media ingest benchmark")


def results_table(result: Result) -> list[str]:
    rows = []
    for key in KEYS:
        load, single = result.load[key], result.single.get(key, Series())
        media_runs = [r for r in load.runs if r.media_sent]
        loaded = bool(load.runs)
        rows.append(
            [
                f"**{NAMES[key]}**" if key != "text" else NAMES[key],
                f"{fmt_rps(load.med('rate'))} ({_spread(load.values('rate'), fmt_rps)})" if loaded else "—",
                f"{fmt_ms(load.med('p50'))} / {fmt_ms(load.med('p99'))}" if loaded else "—",
                f"{fmt_ms(single.med('p50'))} / {fmt_ms(single.med('p99'))}" if single.runs else "—",
                ", ".join(fmt_ms(load.med(k)) for k in ("cpu_web_ms", "cpu_jobs_ms", "cpu_pg_ms")) if loaded else "—",
                f"{load.med('busy'):.2f}" if load.med("busy") is not None else "—",
                f"{fmt_rps(median([float(r.media_sent) for r in media_runs]))}" if media_runs else "—",
                f"{median([float(r.pending_at_end) for r in media_runs]):,.0f}" if media_runs else "—",
                f"{fmt_ms(median([r.drain_s * 1000 for r in media_runs if r.drain_s is not None]))}"
                if media_runs
                else "—",
            ]
        )
    return md_table(
        "workload | deliveries/s (rounds) | p50 / p99 ms under load | p50 / p99 ms, 1 connection | "
        "CPU ms / delivery during wrk: web workers, jobs worker, PostgreSQL | CPUs busy | media per loaded run | "
        "pending when wrk stopped | queue drained after",
        "lllllrrrr",
        rows,
    )


def media_lines(result: Result) -> list[str]:
    lines = []
    series = [
        ("load", result.load["media"]),
        ("1 connection", result.single["media"]),
    ]
    for mode, runs in series:
        for number, r in enumerate(runs.runs, 1):
            types = ", ".join(f"{n} {t}" for t, n in sorted(r.media.items()))
            drained = "**not drained**"
            if r.drain_s is not None:
                rate = f", {r.pending_at_end / r.drain_s:.0f} media/s" if r.drain_s > 0.5 and r.pending_at_end else ""
                drained = f"drained {r.drain_s:.1f} s after wrk stopped{rate}"
            per_media = (
                f"; jobs worker {fmt_ms(r.jobs_cpu_per_media_ms)} ms CPU per media" if r.jobs_cpu_per_media_ms else ""
            )
            lines.append(
                f"- {mode}, round {number}: {r.media_sent:,} media sent ({types}); {r.stored_during:,} stored while "
                f"wrk ran, {r.pending_at_end:,} pending when it stopped (jobs queued: "
                f"{', '.join(f'{n} {s}' for s, n in sorted(r.queue_at_end.items())) or 'none'}); {drained}; then "
                f"{', '.join(f'{n:,} {s}' for s, n in sorted(r.states.items()))}; {r.downloads:,} Graph downloads"
                f"{per_media}."
            )
    return lines


def statement_lines(result: Result) -> list[str]:
    text_count, media_count = result.statements.get("text"), result.statements.get("media")
    if text_count is None or media_count is None:
        return ["- SQL per delivery: not counted (pg_stat_statements unavailable)."]
    text_statements = dict(text_count.statements)
    extra = [
        f"{calls - text_statements.get(st, 0.0):g} × `{st if len(st) <= 110 else st[:107] + '…'}` "
        f"({fmt_ms((media_count.times or {}).get(st))} ms)"
        for st, calls in media_count.statements
        if calls - text_statements.get(st, 0.0) >= 0.5
    ]
    return [
        f"- SQL per delivery (pg_stat_statements over 40 new deliveries of each kind posted one by one, the jobs "
        f"worker stopped meanwhile): a text {text_count.cell()}, a media message {media_count.cell()}. The "
        "media delivery's extra: " + "; ".join(extra) + ". The fetch job is queued inside the webhook's own "
        "transaction, in a savepoint before its commit (app/jobs/queue.py `defer_owed`): one statement more, "
        "no second transaction, no second commit."
    ]


def report(result: Result, args: argparse.Namespace) -> tuple[list[str], list[TargetCheck]]:
    checks = targets(result)
    t_load, m_load = result.load["text"], result.load["media"]
    t_single, m_single = result.single["text"], result.single["media"]
    kind_p50 = {k: [statistics.median(v) for v in rounds if v] for k, rounds in result.by_kind.items()}
    kind_p99 = {k: [percentile(v, 99) for v in rounds if v] for k, rounds in result.by_kind.items()}
    kind_n = {k: sum(len(v) for v in rounds) for k, rounds in result.by_kind.items()}
    per_round = (
        [
            rounds_line(f"{NAMES[k]}, load", rate=s.values("rate"), p50=s.values("p50"), p99=s.values("p99"))
            for k, s in result.load.items()
        ]
        + [
            rounds_line(f"{NAMES[k]}, 1 connection", p50=s.values("p50"), p99=s.values("p99"))
            for k, s in result.single.items()
        ]
        + [
            rounds_line(f"one by one in the media mix, deliveries carrying {k}", p50=kind_p50[k], p99=kind_p99[k])
            for k in ("text", "media")
        ]
    )
    stored_rows = ", ".join(f"{n:,} {s}" for s, n in sorted(result.media_rows.items()))
    errors = "; ".join(f"{n} × “{e}”" for e, n in sorted(result.errors.items(), key=lambda kv: -kv[1])) or "none"
    not_ok = sum(r.not_ok for s in (*result.load.values(), *result.single.values()) for r in s.runs)
    socket_errors = sum(r.socket_errors for s in (*result.load.values(), *result.single.values()) for r in s.runs)
    web_delta = (m_load.med("cpu_web_ms") or 0) - (t_load.med("cpu_web_ms") or 0)
    body = [
        "## Webhook ingest with media (issue 11)",
        "",
        "`POST /webhook/whatsapp` of today's ingest workload (1 message per delivery, 10 % redeliveries; "
        "bench/ingest_benchmark.py) beside the same with about 30 % of the new messages an image (~180 KB), a "
        "voice note (~40 KB) or a PDF (~350 KB), against the same gunicorn in the same run, runs alternating. "
        "The gunicorn runs as production does, its master starting the jobs worker (`JOBS_IN_WEB`, the default), "
        "which downloads every media from the tests' fake Graph server (over TLS on 127.0.0.1, "
        "bench/graph_tls.py), checks its sha256 and stores it on the local filesystem — while wrk posts and after.",
        "",
        *run_facts(args.command_line, result.elapsed_s, args.revision, result.load_start, result.load_end),
        f"- Data: {INGEST_SCALE.label} ({result.setup_note}); 1,000 customers.",
        f"- Load: wrk, {args.wrk_threads} thread(s), {args.connections} keep-alive connections, {args.duration:g} s "
        f"per run, {args.rounds} rounds (text / media order alternating), then {args.single_duration:g} s with 1 "
        "connection each; after every media run the benchmark waits until none of its media is pending "
        f"(at most {args.drain_timeout:g} s) before the next run starts.",
        f"- Jobs worker: {result.jobs_settings}; fake Graph in the benchmark's own process (Python's threaded "
        "HTTP server over TLS).",
        "",
        "### Results (medians of the rounds)",
        "",
        *results_table(result),
        "",
        "Latency under load is wrk's, every connection busy (queueing included). CPU per delivery is the CPU "
        "the processes used while wrk ran divided by the deliveries it issued: gunicorn's master and web "
        "workers; the jobs worker (downloading, hashing, storing the media meanwhile); the whole PostgreSQL "
        "server. CPUs busy: of the machine's "
        f'{psutil.cpu_count()}, by every process, during the loaded runs. "Queue drained after": from wrk\'s '
        "last answer until no media of the run is pending.",
        "",
        "### What it means",
        "",
        f"- Under load (the CPUs saturated) the mix sustains {fmt_rps(m_load.med('rate'))} vs "
        f"{fmt_rps(t_load.med('rate'))} deliveries/s; text-only rounds spread over "
        f"{_spread(t_load.values('rate'), fmt_rps)} /s. The web workers spend {fmt_ms(m_load.med('cpu_web_ms'))} vs "
        f"{fmt_ms(t_load.med('cpu_web_ms'))} ms of CPU per delivery ({web_delta:+.2f} ms: the media message's "
        "extra columns and the job queued in its transaction); the jobs worker's "
        f"{fmt_ms(m_load.med('cpu_jobs_ms'))} ms per delivery is CPU the webhook no longer has on a 2-core "
        "machine — the only way the downloads reach the webhook.",
        f"- One delivery at a time (what Meta sees when the service is not saturated) p50 is "
        f"{fmt_ms(m_single.med('p50'))} ms with media vs {fmt_ms(t_single.med('p50'))} ms without "
        f"(rounds {_spread(m_single.values('p50'), fmt_ms)} vs {_spread(t_single.values('p50'), fmt_ms)} ms), "
        f"p99 {fmt_ms(m_single.med('p99'))} vs {fmt_ms(t_single.med('p99'))} ms.",
        f"- Delivery by delivery in the same run ({args.sequential} of the media mix posted one at a time per "
        f"round, the worker downloading meanwhile; {kind_n['media']:,} media and {kind_n['text']:,} text "
        f"deliveries timed): a delivery carrying a media message is answered at p50 "
        f"{fmt_ms(median(kind_p50['media']))} ms (rounds {_spread(kind_p50['media'], fmt_ms)}), p99 "
        f"{fmt_ms(median(kind_p99['media']))} ms; one carrying a text at p50 {fmt_ms(median(kind_p50['text']))} ms "
        f"(rounds {_spread(kind_p50['text'], fmt_ms)}), p99 {fmt_ms(median(kind_p99['text']))} ms. That difference "
        "is the webhook's own cost of a media message (the media columns, and the fetch job queued in its "
        "transaction: a savepoint and one statement more) plus the downloads' CPU on the same 2 cores (the worker "
        "runs at `JOBS_NICE`); no delivery waits for a download, the webhook never calls Graph.",
        "",
        *statement_lines(result),
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### Media stored, per run",
        "",
        *media_lines(result),
        "",
        f"- By the end: {stored_rows} media rows (warm-up included); {result.files[0]:,} files, "
        f"{fmt_mb(result.files[1] / 1024 / 1024)} on disk; {result.downloads:,} Graph downloads in all.",
        f"- Answers other than 200 under load: {not_ok}; socket errors: {socket_errors}; errors the app logged: "
        f"{errors}. Exactly one row per message after every run (in-flight deliveries re-posted, as Meta would).",
        "",
        "### Set-up",
        "",
        f"- gunicorn: `{result.command}` (gunicorn.conf.py: gthread, 2 workers × 4 threads, "
        f"max_requests {MAX_REQUESTS_TEXT} "
        f"— worker restarts: {result.workers[1]}), `APP_ENV=production`, plus the jobs worker as the master's child.",
        "- Graph: `WHATSAPP_GRAPH_URL` and `WHATSAPP_MEDIA_HOSTS` name the fake server on https://127.0.0.1, "
        "`REQUESTS_CA_BUNDLE` its throw-away CA; storage `MEDIA_STORAGE_PATH` under bench/.data (fsync per file).",
        "",
        "### Per-round figures",
        "",
        *per_round,
    ]
    return body, checks


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each loaded wrk run")
    parser.add_argument("--single-duration", type=float, default=3.0, help="seconds of each 1-connection run")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections (default 16)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk's request timeout, seconds")
    parser.add_argument("--max-rate", type=float, default=1500.0, help="deliveries/s the generated bodies suffice for")
    parser.add_argument(
        "--sequential", type=int, default=300, help="deliveries posted one by one per round, timed by content"
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="longest wait for the queue to drain, s")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench database again")
    parser.add_argument("--keep-database", action="store_true", help="keep the copy the run wrote to")
    parser.add_argument("--keep-files", action="store_true", help="keep the stored media under bench/.data")
    args = parser.parse_args(argv)
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.media_ingest_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    apply_bench_env()
    args.revision = code_revision()
    server = BenchServer()
    result = run(server, args)
    body, checks = report(result, args)
    publish("media_ingest", body, checks, result.memory, args.revision, server)
    sys.stdout.write("\n".join(results_table(result)) + "\n\n")
    sys.stdout.write("\n".join(c.line() for c in checks) + "\n")
    sys.stdout.write(f"Wrote the media_ingest section of bench/RESULTS.md in {result.elapsed_s / 60:.1f} min.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
