"""Benchmark of GET /whatsapp/api/conversaciones under a real gunicorn, beside two baselines.

    .venv/bin/python -m bench.list_benchmark [--scales small,large] [--rounds 5]   (`make bench` runs it)

For each scale it prepares its own database (`inbox_bench_<conversations>x<messages>` on the
embedded PostgreSQL under instance/pg-bench, or on the server of BENCH_DATABASE_URL): Alembic
migrations, an agent, then the demo seed (`app.services.demo.seed`), VACUUM ANALYZE. A seeded
database is reused by later runs when its row counts, the migrations and the seed code still
match (seeding 1 M messages takes 15 s to a minute). Shared with the other benchmarks in
bench/common.py.

It then starts two gunicorns with the same settings, as Render runs the app (`-c gunicorn.conf.py`
and GUNICORN_CMD_ARGS="--preload --access-logfile -", APP_ENV=production), the app (`wsgi:app`)
and the baselines (`bench.baselines:app`), and measures, in rounds whose order rotates:

* page 1 and the last page (per_page 50) of the project's endpoint and of the analysis'
  "proposed query"; the "old approach" has no pagination (one answer with every conversation);
* p50 / p99 latency of sequential requests over one keep-alive connection (requests.Session);
* requests/s with `--threads` client threads for `--duration` seconds;
* SQL statements per request, counted by PostgreSQL's pg_stat_statements in the server the
  gunicorns talk to (or, when that extension cannot be loaded, by a SQLAlchemy
  `before_cursor_execute` listener around the same request made in-process).

Figures are medians over the rounds; the whole service's memory is sampled throughout. Results
are printed and written to the "Conversation list" section of bench/RESULTS.md, with EXPLAIN
(ANALYZE, BUFFERS) of the endpoint's two list statements at the largest scale. The scale curve
(bench/scale_benchmark.py) calls `run_scale` with `light=True`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import event

from bench.common import (
    BENCH_AGENT,
    BENCH_ENV,
    GUNICORN_ENV,
    MAX_REQUESTS_TEXT,
    PER_PAGE,
    RESETS,
    ROOT,
    BenchGunicorn,
    BenchServer,
    PgStatStatements,
    Scale,
    StatementCount,
    TargetCheck,
    apply_bench_env,
    classify,
    code_revision,
    compare,
    fetch,
    fmt_ms,
    fmt_rps,
    load_average,
    log,
    md_table,
    memory_targets,
    percentile,
    prepare_database,
    publish,
    ratio,
    rounds_line,
    run_facts,
    sequential,
    setup_app,
    setup_logging,
    throughput,
)

LIST_PATH = "/whatsapp/api/conversaciones"
TARGET_P50_MS = 15.0
TARGET_CEILING_RATIO = 0.6  # ours req/s ÷ the hand-written ceiling's, page 1 (issue 14)
TARGET_MESSAGES = 1_000_000

SCALES = {
    "small": Scale("small", 500, 10),  # the capacity analysis' scale
    "large": Scale("large", 50_000, 20),  # 1 M messages
}


def issue_token(database_url: str) -> tuple[str, int]:
    from app.extensions import db
    from app.services import agents

    app = setup_app(database_url)
    with app.app_context():
        token = agents.create_token(BENCH_AGENT, name="list benchmark")
        agent_id = agents.find_agent(BENCH_AGENT).id  # type: ignore[union-attr]
        db.session.remove()
        db.engine.dispose()
    return token, agent_id


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    base_url: str
    path: str
    headers: dict[str, str]
    paginated: bool

    def url(self, page: int) -> str:
        query = f"?page={page}&per_page={PER_PAGE}" if self.paginated else ""
        return f"{self.base_url}{self.path}{query}"


class InProcess:
    """The same request made in-process (Flask test client), its SQL seen by a SQLAlchemy event."""

    def __init__(self, database_url: str, token: str) -> None:
        self.app = setup_app(database_url)
        self.client = self.app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple[str, Any]]]:
        from app.extensions import db

        captured: list[tuple[str, Any]] = []

        def listener(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            captured.append((statement, parameters))

        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", listener)
        try:
            yield captured
        finally:
            event.remove(engine, "before_cursor_execute", listener)

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"in-process GET {path} answered {response.status_code}")
        return response.get_json()

    def count(self, path: str, n: int) -> StatementCount:
        self.get(path)
        with self.capture() as captured:
            for _ in range(n):
                self.get(path)
        per_class: dict[str, float] = {}
        texts: dict[str, float] = {}
        for statement, _params in captured:
            per_class[classify(statement)] = per_class.get(classify(statement), 0.0) + 1 / n
            key = " ".join(statement.split())
            texts[key] = texts.get(key, 0.0) + 1 / n
        return StatementCount(per_class, sorted(texts.items(), key=lambda s: -s[1]), "SQLAlchemy event, in-process")

    def request_ms(self, path: str, n: int = 50) -> float:
        """Median time of the whole request in-process (no HTTP, no gunicorn)."""
        for _ in range(20):
            self.get(path)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.get(path)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    def explain(self, path: str, page: str) -> list[Plan]:
        """Each statement of the request, with its parameters: EXPLAIN (ANALYZE, BUFFERS) of the
        list statements, and the median time of running it directly through psycopg2."""
        from app.extensions import db

        self.get(path)
        with self.capture() as captured:
            self.get(path)
        plans = []
        with self.app.app_context():
            raw = db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                for statement, params in captured:
                    role = statement_role(statement)
                    plan = ""
                    if role != "token lookup":
                        for _ in range(2):  # the second run is the warm one
                            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                            plan = "\n".join(row[0] for row in cursor.fetchall())
                    times = []
                    for _ in range(50):
                        t0 = time.perf_counter()
                        cursor.execute(statement, params)
                        cursor.fetchall()
                        times.append((time.perf_counter() - t0) * 1000)
                    sql = cursor.mogrify(statement, params).decode()
                    plans.append(Plan(page, role, sql, plan, statistics.median(times)))
                raw.rollback()
            finally:
                raw.close()
        return plans


def statement_role(statement: str) -> str:
    if "api_tokens" in statement:
        return "token lookup"
    if "page_ids" in statement:
        return "page rows"
    if "count(" in statement:
        return "total and tab counts"
    return "other"


@dataclass
class Plan:
    page: str
    role: str
    sql: str
    plan: str
    direct_ms: float

    def timing(self, name: str) -> float | None:
        match = re.search(rf"^{name} Time: ([0-9.]+) ms", self.plan, re.MULTILINE)
        return float(match.group(1)) if match else None


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Cell:
    """One target × page at one scale, across rounds."""

    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    samples: int = 0
    statements: StatementCount | None = None
    skipped: str = ""
    single_request_ms: float | None = None

    def median(self, name: str) -> float | None:
        values = getattr(self, name)
        return statistics.median(values) if values else None


@dataclass
class ScaleResult:
    scale: Scale
    setup_note: str
    cells: dict[tuple[str, str], Cell]
    floor_p50: list[float]
    explain: list[Plan]
    in_process_ms: dict[str, float]
    commands: dict[str, str]
    workers: dict[str, tuple[int, int]]
    statement_method: str
    elapsed_s: float
    load: str
    resets: int
    memory: dict[str, dict[str, Any]]


def page_label(page: int, scale: Scale) -> str:
    return "1" if page == 1 else f"{page} (last)"


def check_response(target: Target, page: int, scale: Scale, headers: dict[str, str]) -> None:
    with requests.Session() as session:
        body = fetch(session, target.url(page), headers, 600).json()
    rows = body["conversations"]
    if target.paginated:
        expected = min(PER_PAGE, scale.conversations - (page - 1) * PER_PAGE)
        total = body["pagination"]["total"]
        if len(rows) != expected or total != scale.conversations:
            raise RuntimeError(f"{target.key} page {page}: {len(rows)} rows, total {total}; expected {expected}")
    elif len(rows) != scale.conversations:
        raise RuntimeError(f"{target.key}: {len(rows)} rows, expected {scale.conversations}")


def same_answer(ours: Target, ceiling: Target, pages: list[int], timeout: float) -> None:
    """The ceiling answers exactly what the endpoint answers (same page, same JSON), or the run stops."""
    with requests.Session() as session:
        for page in pages:
            mine = fetch(session, ours.url(page), ours.headers, timeout).json()
            theirs = fetch(session, ceiling.url(page), ceiling.headers, timeout).json()
            if mine != theirs:
                raise RuntimeError(f"the hand-written ceiling's page {page} differs from the endpoint's")


def _time_old_approach(
    old: Target, cells: dict[tuple[str, str], Cell], scale: Scale, stats: PgStatStatements, args: argparse.Namespace
) -> bool:
    """One timed request to the old approach; True when it is fast enough to measure in rounds."""
    timeout = args.old_timeout
    old_cell = cells[("old", "all (no pagination)")]
    log.info("%s: one request to the old approach (%s conversations × 3 queries)…", scale.name, scale.conversations)
    t0 = time.perf_counter()
    if stats.available:
        old_cell.statements = stats.count(_requester(old, 1, 1, timeout))
    else:
        _requester(old, 1, 1, timeout)()
    old_cell.single_request_ms = (time.perf_counter() - t0) * 1000
    measure_old = old_cell.single_request_ms <= args.old_max_seconds * 1000
    if measure_old:
        check_response(old, 1, scale, {})
        sequential(old.url(1), {}, 3, 2.0, timeout)
    else:
        old_cell.skipped = (
            f"skipped: {old_cell.single_request_ms / 1000:.1f} s per request (1 request; "
            f"over --old-max-seconds {args.old_max_seconds:g})"
        )
        log.info("%s: old approach %s", scale.name, old_cell.skipped)
    return measure_old


def run_scale(server: BenchServer, scale: Scale, args: argparse.Namespace, *, light: bool = False) -> ScaleResult:
    """Measure one scale. `light` (the scale curve): this project and the proposed query only,
    no old approach, no query plans or in-process timings."""
    started = time.perf_counter()
    resets_before = RESETS.count
    url, setup_note = prepare_database(server, scale, args.reseed)
    token, agent_id = issue_token(url)
    auth = {"Authorization": f"Bearer {token}"}
    ours = BenchGunicorn(f"app-{scale.name}", "wsgi:app", url)
    baselines = BenchGunicorn(f"baselines-{scale.name}", "bench.baselines:app", url)
    targets = {
        "ours": Target("ours", "this project", ours.base_url, LIST_PATH, auth, True),
        "ceiling": Target(
            "ceiling",
            "hand-written ceiling",
            baselines.base_url,
            "/ceiling/conversaciones",
            {"X-Agent-Id": str(agent_id)},
            True,
        ),
        "proposed": Target("proposed", "proposed query", baselines.base_url, "/proposed/conversaciones", {}, True),
        "old": Target("old", "old approach (N+1)", baselines.base_url, "/old/conversaciones", {}, False),
    }
    if light:
        del targets["old"]
    pages = [1, scale.pages]
    cells: dict[tuple[str, str], Cell] = {}
    for key, target in targets.items():
        for page in pages if target.paginated else [1]:
            cells[(key, page_label(page, scale) if target.paginated else "all (no pagination)")] = Cell()
    floor: list[float] = []
    in_process = None if light else InProcess(url, token)
    stats = PgStatStatements(url)
    timeout = args.old_timeout
    try:
        ours.start()
        baselines.start()
        # Warm-up: every worker thread, connection and the buffer cache, and check the answers.
        for key in ("ours", "ceiling", "proposed"):
            target = targets[key]
            for page in pages:
                check_response(target, page, scale, target.headers)
                sequential(target.url(page), target.headers, 20, 2.0, timeout)
                throughput(target.url(page), target.headers, args.threads, 1.0, timeout)
        same_answer(targets["ours"], targets["ceiling"], pages, timeout)
        # Statements per request.
        for key in ("ours", "proposed"):
            target = targets[key]
            for page in pages:
                cell = cells[(key, page_label(page, scale))]
                if stats.available:
                    cell.statements = stats.count(_requester(target, page, 10, timeout))
                elif key == "ours" and in_process is not None:
                    cell.statements = in_process.count(f"{LIST_PATH}?page={page}&per_page={PER_PAGE}", 10)
        # The old approach: one timed request first; measured in rounds only when it is fast enough.
        measure_old = not light
        if not light:
            measure_old = _time_old_approach(targets["old"], cells, scale, stats, args)
        # Rounds.
        order = ["ours", "ceiling", "proposed", "old"] if measure_old else ["ours", "ceiling", "proposed"]
        for round_no in range(args.rounds):
            log.info("%s: round %d/%d", scale.name, round_no + 1, args.rounds)
            floor.append(statistics.median(sequential(ours.base_url + "/healthz", {}, args.sequential, 1.0, timeout)))
            rotated = order[round_no % len(order) :] + order[: round_no % len(order)]
            for key in rotated:
                target = targets[key]
                for page in pages if target.paginated else [1]:
                    label = page_label(page, scale) if target.paginated else "all (no pagination)"
                    cell = cells[(key, label)]
                    latencies = sequential(target.url(page), target.headers, args.sequential, args.budget, timeout)
                    cell.p50.append(percentile(latencies, 50))
                    cell.p99.append(percentile(latencies, 99))
                    cell.samples += len(latencies)
                    cell.rps.append(throughput(target.url(page), target.headers, args.threads, args.duration, timeout))
                    log.info(
                        "  %-8s page %-10s p50 %8.2f ms  p99 %8.2f ms  %8.1f req/s  (n=%d)",
                        key,
                        label,
                        cell.p50[-1],
                        cell.p99[-1],
                        cell.rps[-1],
                        len(latencies),
                    )
        explain: list[Plan] = []
        in_process_ms: dict[str, float] = {}
        for page in pages if in_process is not None else []:
            path = f"{LIST_PATH}?page={page}&per_page={PER_PAGE}"
            explain += in_process.explain(path, page_label(page, scale))
            in_process_ms[page_label(page, scale)] = in_process.request_ms(path, 100)
        workers = {"ours": ours.workers(), "baselines": baselines.workers()}
    finally:
        ours.stop()
        baselines.stop()
        stats.close()
    method = stats.reason if stats.available else f"SQLAlchemy event in-process ({stats.reason})"
    return ScaleResult(
        scale=scale,
        setup_note=setup_note,
        cells=cells,
        floor_p50=floor,
        explain=explain,
        in_process_ms=in_process_ms,
        commands={"ours": ours.command, "baselines": baselines.command},
        workers=workers,
        statement_method=method,
        elapsed_s=time.perf_counter() - started,
        load=load_average(),
        resets=RESETS.count - resets_before,
        memory={
            f"{label} ({g.name})": g.memory.as_dict()
            for label, g in (("this project", ours), ("baselines", baselines))
            if g.memory is not None
        },
    )


def _requester(target: Target, page: int, n: int, timeout: float) -> Callable[[], int]:
    def run() -> int:
        with requests.Session() as session:
            for _ in range(n):
                fetch(session, target.url(page), target.headers, timeout)
        return n

    return run


# --- report -----------------------------------------------------------------------------------


def results_table(results: list[ScaleResult]) -> list[str]:
    names = {
        "ours": "**this project**",
        "ceiling": "hand-written ceiling",
        "proposed": "proposed query",
        "old": "old approach (N+1)",
    }
    rows = []
    for result in results:
        for (key, label), cell in result.cells.items():
            statements = cell.statements.cell() if cell.statements else "—"
            if cell.skipped:
                figures = [f"{fmt_ms(cell.single_request_ms)} ¹", "—", "—", statements, 1]
            else:
                figures = [fmt_ms(cell.median("p50")), fmt_ms(cell.median("p99")), fmt_rps(cell.median("rps"))]
                figures += [statements, cell.samples]
            rows.append([result.scale.name, names[key], label, *figures])
    header = "scale | target | page | p50 ms | p99 ms | req/s | SQL statements / request | samples"
    return md_table(header, "lllrrrlr", rows)


def ratio_lines(results: list[ScaleResult]) -> tuple[list[str], list[str]]:
    rows = []
    sentences = []
    for result in results:
        old = result.cells[("old", "all (no pagination)")]
        old_p50 = old.single_request_ms if old.skipped else old.median("p50")
        for page in (1, result.scale.pages):
            label = page_label(page, result.scale)
            ours = result.cells[("ours", label)]
            proposed = result.cells[("proposed", label)]
            ceiling = result.cells[("ceiling", label)]
            ours_p50, ours_rps = ours.median("p50"), ours.median("rps")
            marker = " ¹" if old.skipped else ""
            rows.append(
                [
                    result.scale.name,
                    label,
                    ratio(ours_rps, ceiling.median("rps")),
                    ratio(ceiling.median("p50"), ours_p50),
                    ratio(proposed.median("p50"), ours_p50),
                    ratio(ours_rps, proposed.median("rps")),
                    ratio(old_p50, ours_p50) + marker,
                    ratio(ours_rps, old.median("rps")) if not old.skipped else "—",
                ]
            )
            old_vs = compare(old_p50, ours_p50, lower_is_better=True, what="")
            sentences.append(
                f"- {result.scale.name}, page {label}: ours is "
                f"{compare(proposed.median('p50'), ours_p50, lower_is_better=True, what='')} than the proposed "
                f"query at p50 and serves "
                f"{compare(proposed.median('rps'), ours_rps, lower_is_better=False, what='its requests/s')}; "
                f"{old_vs} than the old approach" + (" (whose time is from 1 request)" if old.skipped else "") + "."
            )
    header = (
        "scale | page | ours req/s ÷ ceiling | ceiling p50 ÷ ours | proposed p50 ÷ ours | ours req/s ÷ proposed"
        " | old p50 ÷ ours | ours req/s ÷ old"
    )
    return md_table(header, "llrrrrrr", rows), sentences


def breakdown_lines(results: list[ScaleResult]) -> list[str]:
    roles = ("token lookup", "total and tab counts", "page rows")
    rows = []
    for r in results:
        for page in (1, r.scale.pages):
            label = page_label(page, r.scale)
            http = r.cells[("ours", label)].median("p50")
            by_role = {p.role: p.direct_ms for p in r.explain if p.page == label}
            sql = sum(by_role.values())
            rest = http - sql if http is not None else None
            rows.append(
                [r.scale.name, label, fmt_ms(http), fmt_ms(r.in_process_ms.get(label))]
                + [fmt_ms(by_role.get(role)) for role in roles]
                + [fmt_ms(sql), fmt_ms(rest)]
            )
    header = (
        f"scale | page | HTTP p50 (gunicorn) | in-process request | {' | '.join(roles)} | SQL total | Python + HTTP"
    )
    lines = md_table(header, "ll" + "r" * (len(roles) + 4), rows)
    lines += [
        "",
        "Milliseconds, medians. Statements: run directly through psycopg2 with the request's parameters "
        "(planning, execution and fetch; 50 runs each). In-process request: the same request through "
        "Flask's test client, no HTTP (100 runs). Python + HTTP = HTTP p50 − SQL total: building the "
        "statements, the ORM, serialising, JSON, gunicorn and the HTTP client. Measured after the rounds, "
        "outside gunicorn, so the columns come from different moments of a noisy machine.",
    ]
    return lines


def gunicorn_note(results: list[ScaleResult]) -> str:
    restarts = "; ".join(
        f"{r.scale.name}: {r.workers['ours'][1]} (app), {r.workers['baselines'][1]} (baselines)" for r in results
    )
    resets = "; ".join(f"{r.scale.name}: {r.resets}" for r in results)
    conf = (
        "The repository's gunicorn.conf.py applies (gthread; workers and threads from WEB_CONCURRENCY and "
        f"GUNICORN_THREADS, default 2 × 4; keep-alive 5 s; max_requests {MAX_REQUESTS_TEXT}, as in production). "
        if (ROOT / "gunicorn.conf.py").exists()
        else ""
    )
    return (
        f"{conf}Worker restarts during the run — {restarts}. Keep-alive connections closed under the client by "
        f"a restarting worker, retried on a new connection (the retry counts in that request's time) — {resets}."
    )


def list_targets(results: list[ScaleResult]) -> list[TargetCheck]:
    checks = []
    for result in results:
        if result.scale.messages < TARGET_MESSAGES:
            continue
        ours1 = result.cells[("ours", "1")]
        ceiling1 = result.cells[("ceiling", "1")]
        per_round = [
            f"{o / c:.2f}×" for o, c in zip(ours1.rps, ceiling1.rps, strict=False) if c
        ]  # the rounds rotate, each pair from one round
        got, best = ours1.median("rps"), ceiling1.median("rps")
        checks.append(
            TargetCheck(
                f"≥ {TARGET_CEILING_RATIO:g}× the hand-written ceiling's req/s at {result.scale.messages:,} messages, "
                "page 1",
                f"{ratio(got, best)} ({fmt_rps(got)} vs {fmt_rps(best)} req/s; per round {', '.join(per_round)})",
                bool(got and best and got / best >= TARGET_CEILING_RATIO),
            )
        )
        for page in (1, result.scale.pages):
            label = page_label(page, result.scale)
            ours = result.cells[("ours", label)]
            proposed = result.cells[("proposed", label)]
            p50 = ours.median("p50")
            checks.append(
                TargetCheck(
                    f"p50 ≤ {TARGET_P50_MS:g} ms at {result.scale.messages:,} messages, page {label}",
                    f"{fmt_ms(p50)} ms",
                    p50 is not None and p50 <= TARGET_P50_MS,
                )
            )
            prop = proposed.median("p50")
            checks.append(
                TargetCheck(
                    f"≥ 20 × faster than the proposed query at {result.scale.messages:,} messages, page {label}",
                    f"{ratio(prop, p50)} (p50 {fmt_ms(prop)} vs {fmt_ms(p50)} ms)",
                    bool(p50 and prop and prop / p50 >= 20),
                )
            )
    memory = {k: v for r in results for k, v in r.memory.items()}
    return checks + memory_targets(memory, "the list benchmark")


def write_report(
    results: list[ScaleResult], server: BenchServer, args: argparse.Namespace, total_s: float, load: str
) -> str:
    revision = args.revision
    table, sentences = ratio_lines(results)
    out = [
        "## Conversation list (item 2)",
        "",
        "`GET /whatsapp/api/conversaciones` of this project, under gunicorn, beside the two approaches of",
        "the capacity analysis (`/work/shared/docs/capacity-analysis.es.md`), measured in the same run,",
        "on the same database, behind the same gunicorn settings.",
        "",
        *run_facts(args.command_line, total_s, revision, load, load_average()),
        f"- Every figure is the **median of {args.rounds} rounds** (per-round figures at the end).",
        "",
        "### Results",
        "",
        *results_table(results),
        "",
    ]
    skipped = [r for r in results if r.cells[("old", "all (no pagination)")].skipped]
    for r in skipped:
        out.append(f"¹ {r.scale.name}: old approach {r.cells[('old', 'all (no pagination)')].skipped}.")
    if skipped:
        out.append("")
    out += [
        "p50 / p99: client-side wall time of sequential requests over one keep-alive connection "
        f"(up to {args.sequential} per round, or {args.budget:g} s), including the HTTP client's own overhead: "
        "`/healthz` (no database) answers in "
        + ", ".join(f"{fmt_ms(statistics.median(r.floor_p50))} ms ({r.scale.name})" for r in results if r.floor_p50)
        + " at p50. req/s: completed requests with "
        f"{args.threads} client threads (each its own keep-alive connection) for {args.duration:g} s. "
        "p99 of a few samples is their maximum.",
        "",
        "### Ratios (this project against each baseline)",
        "",
        "Medians against medians; every ratio is above 1× where this project does better.",
        "",
        *table,
        "",
        *sentences,
        "",
        "### Targets",
        "",
        *[c.line() for c in list_targets(results)],
        "",
        "### Where this project's time goes",
        "",
        *breakdown_lines(results),
        "",
        "### Set-up",
        "",
    ]
    for r in results:
        out.append(
            f"- {r.scale.name}: {r.scale.label}; {r.setup_note}; measured in {r.elapsed_s:.0f} s; "
            f"load average at its end {r.load}."
        )
    r0 = results[0]
    out += [
        "- Data: `app.services.demo.seed` (set-based), on an agent created first so 2/3 of the conversations "
        "are assigned; one database per scale, `inbox_bench_<conversations>x<messages>`.",
        f"- gunicorn (app): `{r0.commands['ours']}`; baselines: `{r0.commands['baselines']}`"
        f" — {r0.workers['ours'][0]} workers each. Only one target is under load at a time. " + gunicorn_note(results),
        "- Auth: the app is called with an API token (`Authorization: Bearer …`, one lookup statement per "
        "request) through the app's whole stack (rate limiter, access log, metrics, …); the baselines are "
        "bare Flask apps with no authentication, limiter, logging or metrics, which only favours them.",
        "- Environment of the app: "
        + ", ".join(f"`{k}={os.environ.get(k, v)}`" for k, v in BENCH_ENV.items())
        + " (the per-token API limit, 600/min by default, would answer 429 under load; the limiter "
        "still runs on every request), and for both gunicorns "
        + ", ".join(f"`{k}={os.environ.get(k, v)}`" for k, v in GUNICORN_ENV.items())
        + " (as on Render). Everything else is the app's defaults with `DATABASE_URL` set.",
        f"- SQL statements per request: {r0.statement_method}, over 10 requests (1 for the old approach), "
        "normalized statements of the bench database only. The first number is the statements that read "
        "data; `pre-ping` is the pool's `SELECT 1` on checkout (`pool_pre_ping`), `transaction` the "
        "driver's `BEGIN` and the `ROLLBACK` when the connection returns to the pool.",
        "- Hand-written ceiling (`bench/baselines.py`, `/ceiling/conversaciones`): this project's list, the same "
        "page and JSON (labels, pagination and tab counts included), from the same summary columns by one "
        "hand-written statement on a raw psycopg2 cursor in autocommit (one round trip), `json.dumps`, no "
        "ORM, authentication, limiter, logging or metrics: the fastest honest implementation on this stack. "
        "`ours req/s ÷ ceiling` is the share of it this project keeps.",
        "- Baselines (`bench/baselines.py`, plain SQLAlchemy Core on `conversations`, `messages`, `contacts`, "
        "no summary columns):",
        "  - *old approach*: every conversation `ORDER BY updated_at DESC`, no pagination, then per "
        "conversation its last message, its last agent message and its unread count (1 + 3 N statements).",
        "  - *proposed query*: `count(*)` for the total, one statement joining each conversation of the page "
        "(`ORDER BY updated_at DESC LIMIT 50 OFFSET …`) to its last message through a correlated "
        "`max(sent_at)` subquery (on an alias, so it runs under SQLAlchemy 2), and one unread `GROUP BY` "
        "over all messages, written to match the partial index `ix_messages_conversation_unread`.",
        "",
        "#### Statements per request, in detail",
        "",
    ]
    for r in results:
        for (key, label), cell in r.cells.items():
            if cell.statements is None:
                continue
            out.append(f"- {r.scale.name} / {key} / page {label}:")
            for statement, calls in cell.statements.statements[:6]:
                shown = statement if len(statement) <= 150 else statement[:147] + "…"
                out.append(f"  - {calls:g} × `{shown}`")
    largest = max(results, key=lambda r: r.scale.messages)
    out += [
        "",
        f"### Query plans of this project's list at {largest.scale.messages:,} messages",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of the two list statements, with the parameters of the benchmarked "
        "request (captured in-process; second, warm run).",
        "",
    ]
    for plan in largest.explain:
        if not plan.plan:
            continue
        out += [
            f"#### Page {plan.page}: {plan.role}",
            "",
            "<details><summary>SQL</summary>",
            "",
            "```sql",
            plan.sql,
            "```",
            "",
            "</details>",
            "",
            "```",
            plan.plan,
            "```",
            "",
        ]
    out += ["### Per-round figures", ""]
    for r in results:
        for (key, label), cell in r.cells.items():
            if cell.p50:
                out.append(rounds_line(f"{r.scale.name} / {key} / page {label}", p50=cell.p50, rps=cell.rps))
    publish("list", out, list_targets(results), {k: v for r in results for k, v in r.memory.items()}, revision, server)
    return "\n".join([*results_table(results), "", *sentences, "", *[c.line() for c in list_targets(results)]])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,large", help="comma-separated: " + ", ".join(SCALES))
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scale; figures are medians (default 5)")
    parser.add_argument("--sequential", type=int, default=200, help="max sequential requests per round and page")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of sequential requests per round and page")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of each concurrent req/s run")
    parser.add_argument("--threads", type=int, default=4, help="client threads for req/s (default 4)")
    parser.add_argument(
        "--old-max-seconds",
        type=float,
        default=3.0,
        help="measure the old approach in rounds only when one request takes at most this long",
    )
    parser.add_argument("--old-timeout", type=float, default=600.0, help="HTTP timeout, seconds")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench databases again")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scales.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCALES]
    if unknown or not names:
        parser.error(f"--scales takes {', '.join(SCALES)}; got {args.scales!r}")
    args.scale_list = [SCALES[n] for n in names]
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.list_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    load = load_average()
    apply_bench_env()  # for the in-process app and both gunicorns
    args.revision = code_revision()  # at start: what the gunicorns import
    started = time.perf_counter()
    server = BenchServer()
    results = []
    for scale in args.scale_list:
        results.append(run_scale(server, scale, args))
    summary = write_report(results, server, args, time.perf_counter() - started, load)
    sys.stdout.write(summary + "\n\n")
    sys.stdout.write(f"Wrote the list section of bench/RESULTS.md in {(time.perf_counter() - started) / 60:.1f} min.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
