"""Benchmark of GET /whatsapp/api/media/<message id> of a stored 1 MB image, beside plain static files.

    .venv/bin/python -m bench.media_serve_benchmark [--rounds 3] [--duration 4]   (or `make bench`)

Issue 11 serves inbound media from our own copy, whole or by `Range`, with the API's
authentication and the same headers and sandboxing as before. This measures what that costs
beside serving the same bytes as a plain static file, in the same run:

* **this project's media route**: `GET /whatsapp/api/media/<id>` with a Bearer token — token
  lookup, rate limit, the message read from PostgreSQL, then the stored file streamed from
  the local filesystem storage (`app/storage/local.py`, 64 KB chunks) with its `ETag`;
* **the app's static route**: `GET /static/bench-media-1mb.jpg` of the same gunicorn — the
  same file copied into static/ for the run, served by Flask's `send_from_directory` through
  the app's request hooks (security headers, access log, metrics), no authentication, no
  database;
* **a minimal send_file**: `bench/baselines_media.py`, one Flask route doing `send_file` of
  the same file, in its own gunicorn with the same settings — the floor of serving a file
  with this stack.

Each whole (200, 1 MiB) and as a 64 KiB `Range` from the middle (206). The image gets there as
it does in production: a signed webhook delivery with an image message, fetched by the jobs
worker from the tests' fake Graph server over TLS (bench/graph_tls.py) and stored. Then, in
rounds whose order rotates, wrk with `--connections` keep-alive connections for `--duration`
seconds (requests/s, p50 / p99 under load), then one connection for `--single-duration`
seconds (p50 / p99 one request at a time). Every answer is checked by size (wrk's byte count
per request) and status (no answer other than 2xx), and one answer of each by its bytes.
Results go to the "Serving stored media" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import text

from app.whatsapp.payloads import sign
from bench.common import (
    DATA_DIR,
    ROOT,
    BenchGunicorn,
    BenchServer,
    TargetCheck,
    apply_bench_env,
    autocommit,
    code_revision,
    fmt_ms,
    fmt_rps,
    load_average,
    log,
    md_table,
    median,
    memory_targets,
    prepare_database,
    publish,
    ratio,
    rounds_line,
    run_facts,
    setup_logging,
)
from bench.graph_tls import TlsFakeGraph, graph_env, make_certificates
from bench.ingest_benchmark import (
    APP_SECRET,
    INGEST_SCALE,
    PHONE_NUMBER_ID,
    SERVER_ENV,
    WEBHOOK_PATH,
    _payload,
    customer,
    ensure_wrk,
    process_tree_cpu,
)
from bench.list_benchmark import issue_token
from tests import meta

COPY_DATABASE = "inbox_bench_media_serve"
WORK_DIR = DATA_DIR / "media-serve"
LUA_SCRIPT = ROOT / "bench" / "media.lua"
STATIC_NAME = "bench-media-1mb.jpg"  # copied into static/ for the run, removed afterwards
SIZE = 1024 * 1024
RANGE_LENGTH = 64 * 1024
RANGE_START = SIZE // 2 - RANGE_LENGTH // 2
MAX_HEADER_BYTES = 2048  # what an answer may add to its body in wrk's byte count
SERVERS = ("ours", "static", "minimal")
NAMES = {
    "ours": "this project: /whatsapp/api/media/<id> (auth, DB, stored copy)",
    "static": "the app's static route: /static/… (same gunicorn)",
    "minimal": "minimal Flask send_file (bench/baselines_media.py)",
}
SHORT = {"ours": "media route", "static": "app static", "minimal": "minimal send_file"}
VARIANTS = ("whole", "range")
VARIANT_NAMES = {"whole": "whole file (1 MiB, 200)", "range": "64 KiB Range from the middle (206)"}


def image_bytes() -> bytes:
    """1 MiB that starts like a JPEG (the bytes are otherwise random: nothing compresses them)."""
    magic = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    return magic + random.Random("media-serve").randbytes(SIZE - len(magic))


@dataclass(frozen=True)
class Target:
    server: str
    variant: str
    url: str
    headers: dict[str, str]

    @property
    def status(self) -> int:
        return 206 if self.variant == "range" else 200

    @property
    def body_size(self) -> int:
        return RANGE_LENGTH if self.variant == "range" else SIZE


@dataclass
class Cell:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    single_p50: list[float] = field(default_factory=list)
    single_p99: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # gunicorn tree CPU per request, loaded runs
    bytes_per_request: list[float] = field(default_factory=list)
    requests: int = 0
    bad_status: int = 0
    socket_errors: int = 0
    empty_runs: int = 0  # runs without a single answer

    def med(self, name: str) -> float | None:
        return median(getattr(self, name))


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    wrk_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def run_wrk(wrk: str, target: Target, connections: int, duration: float, timeout: float) -> WrkResult:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", f"--timeout={max(1, round(timeout))}s"]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(LUA_SCRIPT), target.url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    data = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        bytes=data["bytes"],
        errors=data["errors"],
        latency_us=data["latency_us"],
        wrk_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


def check_answer(target: Target, content: bytes) -> dict[str, str]:
    """One answer, byte for byte; its headers (for the report)."""
    response = requests.get(target.url, headers=target.headers, timeout=30)
    expected = content[RANGE_START : RANGE_START + RANGE_LENGTH] if target.variant == "range" else content
    if response.status_code != target.status or response.content != expected:
        raise AssertionError(
            f"{target.server} {target.variant}: {response.status_code}, {len(response.content)} bytes "
            f"(expected {target.status}, {len(expected)} bytes, the same bytes)"
        )
    if target.variant == "range" and response.headers.get("Content-Range") != (
        f"bytes {RANGE_START}-{RANGE_START + RANGE_LENGTH - 1}/{SIZE}"
    ):
        raise AssertionError(f"{target.server}: Content-Range {response.headers.get('Content-Range')!r}")
    return dict(response.headers)


def measure(
    wrk: str, target: Target, gunicorn: BenchGunicorn, cell: Cell, args: argparse.Namespace, connections: int
) -> WrkResult:
    assert gunicorn.process is not None
    cpu_before = process_tree_cpu(gunicorn.process.pid)
    duration = args.duration if connections > 1 else args.single_duration
    result = run_wrk(wrk, target, connections, duration, args.timeout)
    cpu = process_tree_cpu(gunicorn.process.pid) - cpu_before
    cell.socket_errors += sum(v for k, v in result.errors.items() if k != "status")
    if result.requests == 0:
        # Not one answer in the whole run (the server stalled: a worker restarting on a saturated
        # machine): counted, and no latency is made up for it.
        cell.empty_runs += 1
        log.warning(
            "%s %s: no answer in %g s with %d connection(s)", target.server, target.variant, duration, connections
        )
        return result
    per_request = result.bytes / result.requests
    if not target.body_size <= per_request <= target.body_size + MAX_HEADER_BYTES:
        raise AssertionError(
            f"{target.server} {target.variant}: {per_request:,.0f} bytes per answer, expected "
            f"{target.body_size:,} + headers"
        )
    cell.requests += result.requests
    cell.bad_status += result.errors["status"]
    if connections > 1:
        cell.rps.append(result.rps)
        cell.p50.append(result.latency_us["p50"] / 1000)
        cell.p99.append(result.latency_us["p99"] / 1000)
        cell.cpu_ms.append(cpu * 1000 / max(1, result.requests))
        cell.bytes_per_request.append(per_request)
    else:
        cell.single_p50.append(result.latency_us["p50"] / 1000)
        cell.single_p99.append(result.latency_us["p99"] / 1000)
    return result


# --- the image, stored as in production --------------------------------------------------------


def store_image(gunicorn: BenchGunicorn, database_url: str, graph: TlsFakeGraph, content: bytes) -> tuple[int, str]:
    """Post a signed delivery with an image message; wait for the jobs worker to store it."""
    media_id = str(int(time.time()) * 1000 + 1)
    graph.media[media_id] = (content, "image/jpeg")
    contact = customer(1)
    wamid = f"wamid.mserve{int(time.time())}"
    sha256 = base64.b64encode(hashlib.sha256(content).digest()).decode()
    message = meta.message(
        "image",
        id=wamid,
        sender=contact["wa_id"],
        content={"id": media_id, "mime_type": "image/jpeg", "sha256": sha256, "caption": "la factura"},
    )
    body = meta.encode(_payload([message], contact))
    answer = requests.post(
        gunicorn.base_url + WEBHOOK_PATH,
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, body)},
        timeout=30,
    )
    answer.raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with autocommit(database_url) as conn:
            row = conn.execute(
                text("SELECT id, media_state, media_storage_key FROM messages WHERE wamid = :w"), {"w": wamid}
            ).first()
        if row is not None and row.media_state == "stored":
            return int(row.id), str(row.media_storage_key)
        time.sleep(0.2)
    raise RuntimeError(f"the image was not stored within 60 s (state: {row.media_state if row else None})")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Result:
    setup_note: str
    cells: dict[tuple[str, str], Cell]
    memory: dict[str, dict[str, Any]]
    commands: dict[str, str]
    workers: dict[str, tuple[int, int]]
    headers: dict[str, dict[str, str]]
    elapsed_s: float
    load_start: str
    load_end: str
    stored_after_s: float


def run(server: BenchServer, args: argparse.Namespace) -> Result:
    started = time.perf_counter()
    load_start = load_average()
    wrk = ensure_wrk()
    _template, setup_note = prepare_database(server, INGEST_SCALE, args.reseed)
    url = server.copy_database(INGEST_SCALE.database, COPY_DATABASE)
    setup_note += f"; measured on a fresh copy, {COPY_DATABASE}"
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    storage = WORK_DIR / "storage"
    storage.mkdir(parents=True)
    content = image_bytes()
    graph = TlsFakeGraph(certificates=make_certificates(WORK_DIR / "tls"))
    baseline_file = WORK_DIR / STATIC_NAME
    baseline_file.write_bytes(content)
    static_file = ROOT / "static" / STATIC_NAME
    ours = BenchGunicorn(
        "media-serve-app", "wsgi:app", url, {**SERVER_ENV, **graph_env(graph, storage, PHONE_NUMBER_ID)}
    )
    minimal = BenchGunicorn(
        "media-serve-minimal",
        "bench.baselines_media:app",
        url,
        {"MEDIA_BASELINE_FILE": str(baseline_file), "JOBS_IN_WEB": "false"},  # the baseline is not the product
    )
    gunicorns = {"ours": ours, "static": ours, "minimal": minimal}
    cells = {(s, v): Cell() for s in SERVERS for v in VARIANTS}
    headers: dict[str, dict[str, str]] = {}
    try:
        static_file.write_bytes(content)
        ours.start()
        minimal.start()
        t0 = time.perf_counter()
        message_id, key = store_image(ours, url, graph, content)
        stored_after = time.perf_counter() - t0
        stored = storage.joinpath(*key.split("/")).read_bytes()
        if stored != content:
            raise AssertionError("the stored copy differs from Graph's bytes")
        token, _agent = issue_token(url)
        auth = {"Authorization": f"Bearer {token}"}
        paths = {
            "ours": (ours.base_url + f"/whatsapp/api/media/{message_id}", auth),
            "static": (ours.base_url + f"/static/{STATIC_NAME}", {}),
            "minimal": (minimal.base_url + "/file", {}),
        }
        targets = {}
        for s in SERVERS:
            for v in VARIANTS:
                base_url, extra = paths[s]
                h = dict(extra)
                if v == "range":
                    h["Range"] = f"bytes={RANGE_START}-{RANGE_START + RANGE_LENGTH - 1}"
                targets[(s, v)] = Target(s, v, base_url, h)
        for (s, v), target in targets.items():
            answer = check_answer(target, content)
            if v == "whole":
                headers[s] = answer
        log.info("media serve: message %s stored in %.1f s; answers checked byte for byte", message_id, stored_after)
        # Warm-up: every worker thread and connection, the page cache.
        for target in targets.values():
            run_wrk(wrk, target, args.connections, 1, args.timeout)
        for round_no in range(args.rounds):
            log.info("media serve: round %d/%d (load %s)", round_no + 1, args.rounds, load_average())
            order = SERVERS[round_no % 3 :] + SERVERS[: round_no % 3]
            for v in VARIANTS:
                for s in order:
                    cell = cells[(s, v)]
                    measure(wrk, targets[(s, v)], gunicorns[s], cell, args, args.connections)
                    measure(wrk, targets[(s, v)], gunicorns[s], cell, args, 1)
                    log.info(
                        "  %-8s %-5s %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  (1 conn.: p50 %6.2f ms, p99 %6.2f ms)",
                        s,
                        v,
                        cell.rps[-1] if cell.rps else 0.0,
                        cell.p50[-1] if cell.p50 else 0.0,
                        cell.p99[-1] if cell.p99 else 0.0,
                        cell.single_p50[-1] if cell.single_p50 else 0.0,
                        cell.single_p99[-1] if cell.single_p99 else 0.0,
                    )
    finally:
        static_file.unlink(missing_ok=True)
        for g in (ours, minimal):
            g.stop()
        graph.close()
        if not args.keep_database:
            server.drop_database(COPY_DATABASE)
    memory = {}
    if ours.memory is not None:
        memory[f"this project, jobs worker inside ({ours.name})"] = ours.memory.as_dict()
    if minimal.memory is not None:
        memory[f"minimal send_file ({minimal.name})"] = minimal.memory.as_dict()
    return Result(
        setup_note=setup_note,
        cells=cells,
        memory=memory,
        commands={"ours": ours.command, "minimal": minimal.command},
        workers={"ours": ours.workers(), "minimal": minimal.workers()},
        headers=headers,
        elapsed_s=time.perf_counter() - started,
        load_start=load_start,
        load_end=load_average(),
        stored_after_s=stored_after,
    )


# --- report ------------------------------------------------------------------------------------


def results_table(result: Result) -> list[str]:
    rows = []
    for v in VARIANTS:
        for s in SERVERS:
            c = result.cells[(s, v)]
            rows.append(
                [
                    VARIANT_NAMES[v],
                    f"**{NAMES[s]}**" if s == "ours" else NAMES[s],
                    f"{fmt_rps(c.med('rps'))} ({fmt_rps(min(c.rps)) if c.rps else '—'}–"
                    f"{fmt_rps(max(c.rps)) if c.rps else '—'})",
                    fmt_ms(c.med("p50")),
                    fmt_ms(c.med("p99")),
                    fmt_ms(c.med("single_p50")),
                    fmt_ms(c.med("single_p99")),
                    fmt_ms(c.med("cpu_ms")),
                    f"{(c.med('rps') or 0) * (c.med('bytes_per_request') or 0) / 1024 / 1024:,.0f}",
                ]
            )
    return md_table(
        "answer | server | req/s (rounds) | p50 ms (load) | p99 ms (load) | p50 ms (1 conn.) | p99 ms (1 conn.) "
        "| CPU ms / request (gunicorn) | MiB/s",
        "llrrrrrrr",
        rows,
    )


def targets(result: Result) -> list[TargetCheck]:
    checks = []
    for v in VARIANTS:
        ours, static = result.cells[("ours", v)], result.cells[("static", v)]
        paired = [o / b for o, b in zip(ours.rps, static.rps, strict=False) if b]
        checks.append(
            TargetCheck(
                f"media route, {VARIANT_NAMES[v]}: req/s beside the app's static route (reported, no threshold)",
                f"{ratio(ours.med('rps'), static.med('rps'))} ({fmt_rps(ours.med('rps'))} vs "
                f"{fmt_rps(static.med('rps'))} req/s; per round {', '.join(f'{p:.2f}' for p in paired)})",
                True,
            )
        )
    all_cells = list(result.cells.values())
    checks.append(
        TargetCheck(
            "every answer the right status and size (wrk), one of each byte for byte",
            f"{sum(c.requests for c in all_cells):,} answers, {sum(c.bad_status for c in all_cells)} other than "
            f"2xx, {sum(c.socket_errors for c in all_cells)} socket errors (wrk's timeouts included), "
            f"{sum(c.empty_runs for c in all_cells)} runs without any answer",
            all(c.bad_status == 0 for c in all_cells),
        )
    )
    return checks + memory_targets(result.memory, "the media serving benchmark")


def report(result: Result, args: argparse.Namespace) -> tuple[list[str], list[TargetCheck]]:
    checks = targets(result)
    lines = []
    for v in VARIANTS:
        ours, static, minimal = (result.cells[(s, v)] for s in SERVERS)
        lines.append(
            f"- {VARIANT_NAMES[v]}: the media route serves {ratio(ours.med('rps'), static.med('rps'))} the app's "
            f"static route's req/s and {ratio(ours.med('rps'), minimal.med('rps'))} the minimal send_file's; one "
            f"request at a time it answers at p50 {fmt_ms(ours.med('single_p50'))} ms vs "
            f"{fmt_ms(static.med('single_p50'))} ms (static) and {fmt_ms(minimal.med('single_p50'))} ms (minimal). "
            f"CPU per request in gunicorn: {fmt_ms(ours.med('cpu_ms'))} vs {fmt_ms(static.med('cpu_ms'))} vs "
            f"{fmt_ms(minimal.med('cpu_ms'))} ms."
        )
    per_round = [
        rounds_line(
            f"{SHORT[s]}, {v}", rps=result.cells[(s, v)].rps, p50=result.cells[(s, v)].p50, p99=result.cells[(s, v)].p99
        )
        for v in VARIANTS
        for s in SERVERS
    ] + [
        rounds_line(f"{SHORT[s]}, {v}, 1 connection", p50=result.cells[(s, v)].single_p50)
        for v in VARIANTS
        for s in SERVERS
    ]
    shown = ("Content-Type", "Content-Length", "ETag", "Accept-Ranges", "Cache-Control", "Content-Security-Policy")
    header_lines = [
        f"- {SHORT[s]}: " + "; ".join(f"`{k}: {h[k]}`" for k in shown if k in h) for s, h in result.headers.items()
    ]
    body = [
        "## Serving stored media (issue 11)",
        "",
        "`GET /whatsapp/api/media/<message id>` of a stored 1 MiB image — Bearer token, rate limit, the message "
        "read from PostgreSQL, then our copy streamed from the local filesystem storage with its `ETag` — beside "
        "the same bytes as a plain static file: the app's own `/static/…` route on the same gunicorn (Flask's "
        "`send_from_directory` through the app's request hooks, no authentication, no database) and a minimal "
        "Flask `send_file` in its own gunicorn (`bench/baselines_media.py`). Whole, and a 64 KiB `Range` from "
        "the middle. Same gunicorn settings, same run, rounds rotating the order.",
        "",
        *run_facts(args.command_line, result.elapsed_s, args.revision, result.load_start, result.load_end),
        f"- Data: {INGEST_SCALE.label} ({result.setup_note}); the image arrived as a signed webhook delivery and "
        f"the jobs worker stored it {result.stored_after_s:.1f} s later (fetched from the fake Graph over TLS).",
        f"- Load: wrk, 1 thread, {args.connections} keep-alive connections, {args.duration:g} s per run, then "
        f"{args.single_duration:g} s with 1 connection; {args.rounds} rounds.",
        "",
        "### Results (medians of the rounds)",
        "",
        *results_table(result),
        "",
        "CPU per request: gunicorn's master and workers (the app's gunicorn also runs the idle jobs worker) "
        "during the loaded run, divided by the answers. MiB/s: req/s × bytes per answer (headers included).",
        "",
        "### What it means",
        "",
        *lines,
        "- The static routes hand the whole file to gunicorn's `wsgi.file_wrapper` (sendfile: the kernel copies "
        "it); the media route reads it in Python in 64 KiB chunks (`app/storage/local.py` `FileChunks`) and "
        "first does what every API request does: the token looked up, the rate limit counted, the message read "
        "(two queries and a transaction), the access line and metrics. That fixed cost is most of the gap: the "
        "64 KiB range costs the media route nearly as much CPU as the whole file. For a Range, Werkzeug's range "
        "wrapper reads in Python for the static routes too.",
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### Answers",
        "",
        *header_lines,
        "",
        "### Set-up",
        "",
        f"- this project: `{result.commands['ours']}` with the jobs worker (`JOBS_IN_WEB`) and "
        f"`MEDIA_STORAGE_PATH` under bench/.data; minimal: `{result.commands['minimal']}`. Worker restarts "
        f"(max_requests): {result.workers['ours'][1]} (app), {result.workers['minimal'][1]} (minimal).",
        "",
        "### Per-round figures",
        "",
        *per_round,
    ]
    return body, checks


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians (default 3)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of each loaded wrk run")
    parser.add_argument("--single-duration", type=float, default=3.0, help="seconds of each 1-connection run")
    parser.add_argument("--connections", type=int, default=8, help="wrk keep-alive connections (default 8)")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk's request timeout, seconds")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench database again")
    parser.add_argument("--keep-database", action="store_true", help="keep the copy the run wrote to")
    args = parser.parse_args(argv)
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.media_serve_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    apply_bench_env()
    args.revision = code_revision()
    server = BenchServer()
    result = run(server, args)
    body, checks = report(result, args)
    publish("media_serve", body, checks, result.memory, args.revision, server)
    sys.stdout.write("\n".join(results_table(result)) + "\n\n")
    sys.stdout.write("\n".join(c.line() for c in checks) + "\n")
    sys.stdout.write(f"Wrote the media_serve section of bench/RESULTS.md in {result.elapsed_s / 60:.1f} min.\n")
    with contextlib.suppress(OSError):
        shutil.rmtree(WORK_DIR / "storage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
