"""Benchmark of POST /webhook/whatsapp under a real gunicorn, beside the minimal possible handler.

    .venv/bin/python -m bench.ingest_benchmark [--rounds 3] [--duration 10]   (or `make bench`)

The data: a throw-away copy (`inbox_bench_ingest`) of the list benchmark's seeded database at the
capacity analysis' scale (500 conversations × 10 messages; seeded once and reused, see
`bench/common.py`), so every run starts from the same state. Customers are a pool of 1,000
(the seed's 500, whose conversations exist, and 500 new ones, created by their first message),
with the seed's names and the seed's business number, as Meta would send them.

The load: wrk (Debian's; installed with apt-get when missing and running as root) with
`bench/ingest.lua`, cycling through deliveries generated and signed (`X-Hub-Signature-256`,
HMAC-SHA256 with the app secret, `app.whatsapp.payloads.sign`) before the clock starts, shaped
by the project's builders for Meta's payloads (`tests/meta.py`):

* one message per delivery (a customer's text), and five per delivery (one customer's text,
  text, image, location and a reaction to the first text, in one `value`);
* 10 % redeliveries mixed in: 5 % byte-identical copies of an earlier delivery (Meta's retry
  of a delivery it thinks failed) and 5 % the same messages (same wamids) in a different body
  (re-serialised, messages in another order: a retry that is not byte-identical).

For each round and each delivery size, the same file of bodies is sent to both gunicorns
(order rotating): this project (`wsgi:app`) and the baseline (`bench.baselines_ingest:app`:
verify the signature, one `INSERT … ON CONFLICT DO NOTHING` of the message ids, commit), both
with the repository's gunicorn.conf.py and Render's GUNICORN_CMD_ARGS (`--preload
--access-logfile -`), on the same database. Measured:

* sustained deliveries/s with `--connections` keep-alive connections for `--duration` seconds,
  and p50 / p99 latency under that load (wrk's histogram);
* p50 / p99 with a single connection (one delivery at a time: the latency Meta sees when the
  service is not saturated);
* CPU time per delivery of the gunicorn (master + workers), of PostgreSQL and of wrk itself;
* SQL statements per delivery (pg_stat_statements) and their mean execution time;
* after every run, the stored rows: the wamids stored are compared with every message id of
  every delivery wrk issued; those whose request was still in flight when wrk stopped are
  posted again; then `count(*)` and `count(DISTINCT wamid)` must both equal the number of
  distinct message ids sent — asserted, and printed.

Figures are medians over the rounds; the whole service's memory (RSS of master + workers,
summed) is sampled throughout. Results go to the "Webhook ingest" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import text

from app.services.demo import FIRST_NAMES, LAST_NAMES
from app.whatsapp.payloads import sign
from bench.baselines_ingest import CREATE_TABLE as BASELINE_TABLE_DDL
from bench.baselines_ingest import TABLE as BASELINE_TABLE
from bench.common import (
    DATA_DIR,
    MAX_REQUESTS_TEXT,
    RENDER_GUNICORN_CMD_ARGS,
    ROOT,
    BenchGunicorn,
    BenchServer,
    PgStatStatements,
    Scale,
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
    prepare_database,
    publish,
    ratio,
    rounds_line,
    run_facts,
    setup_logging,
)
from tests import meta

APP_SECRET = "bench-app-secret"
WEBHOOK_PATH = "/webhook/whatsapp"
LUA_SCRIPT = ROOT / "bench" / "ingest.lua"
# The seed's business number (app.services.demo.seed), as Meta would name it in every delivery.
PHONE_NUMBER_ID = "demo-phone-number"
DISPLAY_NUMBER = "+54 11 5555-0000"
CUSTOMERS = 1000
INGEST_SCALE = Scale("analysis", 500, 10)  # the capacity analysis' scale, seeded by the list benchmark
COPY_DATABASE = "inbox_bench_ingest"
TARGET_DELIVERIES_PER_S = 400.0
TARGET_RATIO = 0.6
TARGET_RATIO_OVERHEAD = 0.5  # issue 14's "per-request overhead" goal (the 0.6 above is the older, stricter one)
KEYS = ("ours", "baseline")
NAMES = {"ours": "this project", "baseline": "minimal handler"}
SERVER_ENV = {"WHATSAPP_APP_SECRET": APP_SECRET}


# --- the deliveries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    body: bytes
    signature: str
    wamids: tuple[str, ...]
    kind: str  # "new", "exact" (byte-identical redelivery) or "rewrapped" (same wamids, other body)


def customer(number: int) -> dict[str, Any]:
    """Customer `number` (1-based) as the seed created it: same wa_id, same profile name."""
    name = f"{FIRST_NAMES[(number * 7) % len(FIRST_NAMES)]} {LAST_NAMES[(number * 13) % len(LAST_NAMES)]}"
    return meta.contact(wa_id=f"549{number:010d}", name=name)


def _messages(prefix: str, n: int, per_delivery: int, wa_id: str, ts: int) -> list[dict[str, Any]]:
    first = f"{prefix}{n}.0"
    if per_delivery == 1:
        return [meta.message(id=first, sender=wa_id, ts=ts, content={"body": f"Hola, consulta número {n}"})]
    shapes: list[tuple[str, Any]] = [
        ("text", {"body": f"Hola, buenas tardes, consulta número {n}"}),
        ("text", {"body": "¿Tienen turnos para mañana a la mañana? Gracias 🙌"}),
        (
            "image",
            {"id": f"{700000 + n}", "mime_type": "image/jpeg", "sha256": "dGVzdA==", "caption": "así llegó"},
        ),
        ("location", {"latitude": -34.6037, "longitude": -58.3816, "name": "Obelisco", "address": "Av. 9 de Julio"}),
        ("reaction", {"message_id": first, "emoji": "👍"}),
    ]
    return [
        meta.message(msg_type, id=f"{prefix}{n}.{k}", sender=wa_id, ts=ts, content=content)
        for k, (msg_type, content) in enumerate((shapes * ((per_delivery + 4) // 5))[:per_delivery])
    ]


def _payload(messages: list[dict[str, Any]], contact: dict[str, Any]) -> dict[str, Any]:
    value = meta.value(messages=messages, contacts=[contact])
    value["metadata"] = {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID}
    return meta.delivery(value)


MessagesFactory = Callable[[str, int, int, str, int], list[dict[str, Any]]]


def build_workload(
    prefix: str, count: int, per_delivery: int, seed: int, messages_of: MessagesFactory | None = None
) -> list[Item]:
    """`count` signed deliveries: 90 % new, 5 % byte-identical and 5 % re-wrapped redeliveries.

    `messages_of(prefix, n, per_delivery, wa_id, ts)` makes the messages of new delivery `n`
    (default: text, or the five shapes above; bench/media_ingest_benchmark.py mixes in media)."""
    messages_of = messages_of or _messages
    rng = random.Random(seed)
    ts = int(time.time())
    items: list[Item] = []
    originals: list[tuple[int, dict[str, Any]]] = []  # (position, payload)
    for n in range(count):
        slot = n % 20
        earlier = [o for o in originals[-300:] if o[0] <= n - 16]
        if slot in (10, 19) and earlier:
            position, payload = rng.choice(earlier)
            original = items[position]
            if slot == 10:
                items.append(Item(original.body, original.signature, original.wamids, "exact"))
                continue
            value = payload["entry"][0]["changes"][0]["value"]
            rewrapped = json.loads(json.dumps(payload))
            rewrapped["entry"][0]["changes"][0]["value"]["messages"] = list(reversed(value["messages"]))
            body = json.dumps(rewrapped, ensure_ascii=True, separators=(",", ":")).encode()
            items.append(Item(body, sign(APP_SECRET, body), original.wamids, "rewrapped"))
            continue
        contact = customer(rng.randint(1, CUSTOMERS))
        messages = messages_of(prefix, n, per_delivery, contact["wa_id"], ts + n // 200)
        payload = _payload(messages, contact)
        body = meta.encode(payload)
        items.append(Item(body, sign(APP_SECRET, body), tuple(m["id"] for m in messages), "new"))
        originals.append((n, payload))
    return items


def write_workload(items: list[Item], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for item in items:
            if b"\n" in item.body or b"\t" in item.body:
                raise ValueError("a body with a newline or tab cannot go in the wrk file")
            f.write(item.signature.encode() + b"\t" + item.body + b"\n")


# --- wrk ----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log.info("wrk is missing: installing Debian's wrk (apt-get install -y wrk)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, text=True)
        if install.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
            subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "The ingest benchmark needs wrk (the HTTP load generator): run 'sudo apt-get install wrk' "
        "(Debian/Ubuntu) or 'brew install wrk', then run it again."
    )


@dataclass
class WrkRun:
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    threads: list[dict[str, int]]
    wrk_cpu_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def not_ok(self) -> int:
        return sum(t["not_ok"] for t in self.threads)

    @property
    def exhausted(self) -> int:
        return sum(t["exhausted"] for t in self.threads)

    @property
    def statuses(self) -> dict[str, int]:
        """Answers other than 200, by status."""
        counts: dict[str, int] = {}
        for t in self.threads:
            for status, n in t.get("statuses", {}).items():
                counts[status] = counts.get(status, 0) + n
        return counts

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    def issued_positions(self, nthreads: int, total: int) -> list[int]:
        """Positions in the file of every request wrk issued (thread k walks k-1, k-1+T, …)."""
        positions = []
        for t in self.threads:
            own = list(range(t["id"] - 1, total, nthreads))
            positions += own[: t["issued"]]
            if t["issued"] > len(own) and own:
                positions.append(own[-1])  # repeated last body (exhausted)
        return sorted(set(positions))


def run_wrk(wrk: str, url: str, path: Path, threads: int, connections: int, duration: float, timeout: float) -> WrkRun:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(path),
        str(threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    data = json.loads(line.split(" ", 1)[1])
    return WrkRun(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_us=data["latency_us"],
        threads=data["threads"],
        wrk_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


# --- CPU of the processes involved --------------------------------------------------------------


def logged_errors(gunicorn: BenchGunicorn) -> dict[str, int]:
    """The app's error lines (JSON, logger app.errors or level error) in a gunicorn's log, counted."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in gunicorn.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{") or '"level": "error"' not in line:
                continue
            with contextlib.suppress(ValueError):
                event = str(json.loads(line).get("event", "?"))
                counts[event[:160]] = counts.get(event[:160], 0) + 1
    return counts


def process_tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process, its live children and the children it reaped."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                total += t.user + t.system
        return total
    except psutil.Error:
        return 0.0


def machine_busy(before: Any, after: Any) -> tuple[float, float]:
    """CPUs busy (user, nice, system, irq, softirq) and stolen by the hypervisor between two
    `psutil.cpu_times()`, in CPUs (0 … cpu_count)."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    delta = {n: getattr(after, n, 0.0) - getattr(before, n, 0.0) for n in names}
    total = sum(delta.values())
    if total <= 0:
        return 0.0, 0.0
    cpus = psutil.cpu_count() or 1
    busy = sum(delta[n] for n in ("user", "nice", "system", "irq", "softirq"))
    return busy / total * cpus, delta["steal"] / total * cpus


def postmaster_pid(database_url: str) -> int | None:
    with autocommit(database_url) as conn, contextlib.suppress(psutil.Error):
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        parent = psutil.Process(backend).parent()  # while the backend still exists
        return parent.pid if parent else None
    return None


# --- checking what was stored -------------------------------------------------------------------


@dataclass
class Check:
    expected: int  # distinct message ids in what wrk issued
    stored_before: int  # of those, stored when wrk stopped
    reposted: int  # deliveries posted again (in flight when wrk stopped)
    rows: int  # count(*) after
    distinct: int  # count(DISTINCT wamid) after
    deliveries: int | None = None  # webhook_deliveries rows of this run (this project only)
    attempts: int | None = None

    @property
    def exact(self) -> bool:
        return self.rows == self.distinct == self.expected

    def summary(self) -> str:
        return (
            f"{self.rows:,} rows, {self.distinct:,} distinct, {self.expected:,} distinct message ids sent "
            f"({self.stored_before:,} stored when wrk stopped, {self.reposted} in-flight deliveries posted again)"
        )


def check_stored(
    key: str, database_url: str, base_url: str, items: list[Item], positions: list[int], prefix: str
) -> Check:
    table = "messages" if key == "ours" else BASELINE_TABLE
    expected: dict[str, int] = {}
    for position in positions:
        for wamid in items[position].wamids:
            expected.setdefault(wamid, position)
    pattern = prefix + "%"
    with autocommit(database_url) as conn:
        stored = {
            row[0] for row in conn.execute(text(f"SELECT wamid FROM {table} WHERE wamid LIKE :p"), {"p": pattern})
        }
    unexpected = stored - expected.keys()
    if unexpected:
        raise AssertionError(f"{key}: {len(unexpected)} stored message ids were never sent, e.g. {min(unexpected)}")
    missing = sorted({expected[w] for w in expected.keys() - stored})
    with requests.Session() as session:
        for position in missing:
            item = items[position]
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": item.signature}
            response = session.post(base_url + WEBHOOK_PATH, data=item.body, headers=headers, timeout=30)
            if response.status_code != 200:
                raise AssertionError(f"{key}: re-posting an in-flight delivery answered {response.status_code}")
    with autocommit(database_url) as conn:
        rows, distinct = conn.execute(
            text(f"SELECT count(*), count(DISTINCT wamid) FROM {table} WHERE wamid LIKE :p"), {"p": pattern}
        ).one()
        check = Check(len(expected), len(stored), len(missing), rows, distinct)
        if key == "ours":
            check.deliveries, check.attempts = conn.execute(
                text("SELECT count(*), coalesce(sum(attempts), 0) FROM webhook_deliveries WHERE body LIKE :p"),
                {"p": "%" + prefix + "%"},
            ).one()
    if not check.exact:
        raise AssertionError(f"{key}: not exactly one row per message: {check.summary()}")
    return check


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Measure:
    """One target × delivery size × mode across rounds."""

    rate: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_server_ms: list[float] = field(default_factory=list)
    cpu_pg_ms: list[float] = field(default_factory=list)
    cpu_wrk_ms: list[float] = field(default_factory=list)
    machine_busy: list[float] = field(default_factory=list)  # CPUs busy, all processes (of os.cpu_count())
    others_busy: list[float] = field(default_factory=list)  # CPUs busy with processes not in this run
    steal: list[float] = field(default_factory=list)  # CPUs taken by the hypervisor (steal time)
    checks: list[Check] = field(default_factory=list)
    requests: int = 0
    socket_errors: int = 0
    not_ok: int = 0
    exhausted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def med(self, name: str) -> float | None:
        return median(getattr(self, name))


@dataclass
class IngestResult:
    label: str
    setup_note: str
    measures: dict[tuple[str, int, str], Measure]
    statements: dict[tuple[str, int], StatementCount]
    statement_method: str
    memory: dict[str, dict[str, Any]]
    commands: dict[str, str]
    workers: dict[str, tuple[int, int]]
    elapsed_s: float
    load_start: str
    load_end: str
    settings: dict[str, Any]
    profile: dict[str, Any] | None = None
    errors: dict[str, dict[str, int]] = field(default_factory=dict)


@contextlib.contextmanager
def servers(database_url: str, tag: str) -> Iterator[dict[str, BenchGunicorn]]:
    gunicorns = {
        "ours": BenchGunicorn(f"ingest-app-{tag}", "wsgi:app", database_url, SERVER_ENV),
        "baseline": BenchGunicorn(f"ingest-baseline-{tag}", "bench.baselines_ingest:app", database_url, SERVER_ENV),
    }
    try:
        for g in gunicorns.values():
            g.start()
        yield gunicorns
    finally:
        for g in gunicorns.values():
            g.stop()


def post_items(base_url: str, items: list[Item]) -> int:
    with requests.Session() as session:
        for item in items:
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": item.signature}
            response = session.post(base_url + WEBHOOK_PATH, data=item.body, headers=headers, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"{base_url}: a signed delivery answered {response.status_code}: {response.text}")
    return len(items)


def measure_ingest(
    server: BenchServer,
    database_url: str,
    args: argparse.Namespace,
    sizes: tuple[int, ...],
    tag: str,
    *,
    single: bool = True,
    statements: bool = True,
) -> tuple[dict[tuple[str, int, str], Measure], dict[tuple[str, int], StatementCount], str, dict[str, BenchGunicorn]]:
    """Rounds of wrk against both gunicorns on `database_url` (used by the scale benchmark too)."""
    wrk = ensure_wrk()
    with autocommit(database_url) as conn:
        conn.execute(text(BASELINE_TABLE_DDL))
    pg_pid = postmaster_pid(database_url)
    run_id = f"{int(time.time()) % 100000}{tag}"
    measures: dict[tuple[str, int, str], Measure] = {}
    counts: dict[tuple[str, int], StatementCount] = {}
    method = ""
    with servers(database_url, tag) as gunicorns:
        urls = {k: g.base_url + WEBHOOK_PATH for k, g in gunicorns.items()}
        # Warm-up: every worker, thread and pool connection, the new customers' rows, the caches.
        for per in sizes:
            warm = build_workload(f"wamid.w{run_id}m{per}.", 1500, per, seed=per)
            path = DATA_DIR / f"ingest-warmup-{tag}-{per}.tsv"
            write_workload(warm, path)
            for key in KEYS:
                run_wrk(wrk, urls[key], path, args.wrk_threads, args.connections, 2, args.timeout)
        # SQL statements per delivery (pg_stat_statements of this database).
        if statements:
            stats = PgStatStatements(database_url)
            method = stats.reason
            try:
                if stats.available:
                    for per in sizes:
                        sample = [
                            i for i in build_workload(f"wamid.s{run_id}m{per}.", 60, per, seed=7) if i.kind == "new"
                        ]
                        sample = sample[:50]
                        for key in KEYS:
                            base = gunicorns[key].base_url
                            counts[(key, per)] = stats.count(lambda base=base, sample=sample: post_items(base, sample))
            finally:
                stats.close()
        for round_no in range(args.rounds):
            log.info("ingest %s: round %d/%d (load %s)", tag, round_no + 1, args.rounds, load_average())
            order = KEYS if round_no % 2 == 0 else tuple(reversed(KEYS))
            for per in sizes:
                prefix = f"wamid.b{run_id}r{round_no}m{per}."
                count = int(args.duration * args.max_rate) + 2000
                items = build_workload(prefix, count, per, seed=1000 * round_no + per)
                path = DATA_DIR / f"ingest-{tag}-{per}.tsv"
                write_workload(items, path)
                for key in order:
                    measure = measures.setdefault((key, per, "load"), Measure())
                    _one_run(
                        wrk,
                        key,
                        gunicorns[key],
                        database_url,
                        pg_pid,
                        urls[key],
                        path,
                        items,
                        prefix,
                        measure,
                        args,
                        args.connections,
                        args.duration,
                    )
                    log.info(
                        "  %-8s %d msg/delivery  %7.1f deliveries/s  p50 %7.2f ms  p99 %7.2f ms  (%s)",
                        key,
                        per,
                        measure.rate[-1],
                        measure.p50[-1],
                        measure.p99[-1],
                        measure.checks[-1].summary(),
                    )
            if single:
                for per in sizes:
                    prefix = f"wamid.l{run_id}r{round_no}m{per}."
                    items = build_workload(prefix, int(args.single_duration * 1500) + 500, per, seed=77 + round_no)
                    path = DATA_DIR / f"ingest-single-{tag}-{per}.tsv"
                    write_workload(items, path)
                    for key in order:
                        measure = measures.setdefault((key, per, "single"), Measure())
                        _one_run(
                            wrk,
                            key,
                            gunicorns[key],
                            database_url,
                            pg_pid,
                            urls[key],
                            path,
                            items,
                            prefix,
                            measure,
                            args,
                            1,
                            args.single_duration,
                        )
                        log.info(
                            "  %-8s %d msg/delivery  1 connection: p50 %6.2f ms  p99 %6.2f ms",
                            key,
                            per,
                            measure.p50[-1],
                            measure.p99[-1],
                        )
    return measures, counts, method, gunicorns


def _one_run(
    wrk: str,
    key: str,
    gunicorn: BenchGunicorn,
    database_url: str,
    pg_pid: int | None,
    url: str,
    path: Path,
    items: list[Item],
    prefix: str,
    measure: Measure,
    args: argparse.Namespace,
    connections: int,
    duration: float,
) -> None:
    assert gunicorn.process is not None
    cpu_server = process_tree_cpu(gunicorn.process.pid)
    cpu_pg = process_tree_cpu(pg_pid) if pg_pid else 0.0
    threads = 1 if connections == 1 else args.wrk_threads
    machine_before = psutil.cpu_times()
    result = run_wrk(wrk, url, path, threads, connections, duration, args.timeout)
    machine_after = psutil.cpu_times()
    cpu_server = process_tree_cpu(gunicorn.process.pid) - cpu_server
    cpu_pg = (process_tree_cpu(pg_pid) - cpu_pg) if pg_pid else 0.0
    busy_cpus, steal_cpus = machine_busy(machine_before, machine_after)
    measure.machine_busy.append(busy_cpus)
    measure.steal.append(steal_cpus)
    ours_cpus = (cpu_server + cpu_pg + result.wrk_cpu_s) / max(result.duration_s, 1e-9)
    measure.others_busy.append(max(0.0, busy_cpus - ours_cpus))
    positions = result.issued_positions(threads, len(items))
    check = check_stored(key, database_url, gunicorn.base_url, items, positions, prefix)
    measure.rate.append(result.rate)
    measure.p50.append(result.latency_us["p50"] / 1000)
    measure.p99.append(result.latency_us["p99"] / 1000)
    issued = max(1, len(positions))
    measure.cpu_server_ms.append(cpu_server * 1000 / issued)
    if pg_pid:
        measure.cpu_pg_ms.append(cpu_pg * 1000 / issued)
    measure.cpu_wrk_ms.append(result.wrk_cpu_s * 1000 / issued)
    measure.checks.append(check)
    measure.requests += result.requests
    measure.socket_errors += result.socket_errors
    measure.not_ok += result.not_ok
    measure.exhausted += result.exhausted
    for status, n in result.statuses.items():
        measure.statuses[status] = measure.statuses.get(status, 0) + n
    if result.not_ok:
        # Meta delivers again whatever is not answered 200; check_stored() did the same above.
        log.warning("%s: %d signed deliveries answered %s under load", key, result.not_ok, result.statuses)


def run(server: BenchServer, args: argparse.Namespace) -> IngestResult:
    started = time.perf_counter()
    load_start = load_average()
    template_url, setup_note = prepare_database(server, INGEST_SCALE, args.reseed)
    del template_url
    url = server.copy_database(INGEST_SCALE.database, COPY_DATABASE)
    setup_note += f"; measured on a fresh copy, {COPY_DATABASE} (CREATE DATABASE … TEMPLATE)"
    profile = None
    no_preload = None
    try:
        measures, counts, method, gunicorns = measure_ingest(server, url, args, tuple(args.sizes), "main")
        if args.profile:
            log.info("ingest: one more run with cProfile inside the app's workers")
            profile = profile_run(url, args, ensure_wrk())
        log.info("ingest: one more run of the app without --preload, for its memory")
        no_preload = memory_without_preload(url, args, ensure_wrk())
    finally:
        if not args.keep_database:
            server.drop_database(COPY_DATABASE)
    memory = {f"{NAMES[k]} ({g.name})": g.memory.as_dict() for k, g in gunicorns.items() if g.memory is not None}
    if no_preload:
        memory[no_preload["label"]] = no_preload["memory"]
    return IngestResult(
        label=INGEST_SCALE.label,
        setup_note=setup_note,
        measures=measures,
        statements=counts,
        statement_method=method,
        memory=memory,
        commands={k: g.command for k, g in gunicorns.items()},
        workers={k: g.workers() for k, g in gunicorns.items()},
        elapsed_s=time.perf_counter() - started,
        load_start=load_start,
        load_end=load_average(),
        settings={
            "rounds": args.rounds,
            "duration": args.duration,
            "connections": args.connections,
            "wrk_threads": args.wrk_threads,
            "single_duration": args.single_duration,
        },
        profile=profile,
        errors={k: logged_errors(g) for k, g in gunicorns.items()},
    )


# --- where a worker's time goes: cProfile inside gunicorn ---------------------------------------

COMPONENTS = (  # (label, path fragments), first match wins
    ("psycopg2 (send, receive, convert)", ("psycopg2.extensions",)),
    ("SQLAlchemy (session, statements, results, pool)", ("/sqlalchemy/", "/flask_sqlalchemy/")),
    ("Flask + Werkzeug (request, routing, response)", ("/flask/", "/werkzeug/", "/flask_wtf/", "/flask_login/")),
    ("logging (structlog JSON lines, stdlib logging)", ("/structlog/", "/logging/")),
    ("metrics (prometheus)", ("/prometheus_client/", "/prometheus_flask_exporter/")),
    ("rate limiter (flask-limiter)", ("/flask_limiter/", "/limits/")),
    ("JSON (decode body, encode answer)", ("/json/",)),
    ("signature (hmac, sha256)", ("/hmac.py", "_hashlib", "hashlib")),
    ("app: payload parsing", ("app/whatsapp/payloads.py",)),
    (
        "app: ingest, service, view",
        (
            "app/webhook/",
            "app/whatsapp/",
            "app/services/inbound.py",
            "app/services/ingest.py",
            "app/services/summaries.py",
            "app/services/statuses.py",
        ),
    ),
    ("app: other hooks", ("/app/",)),
)


def _component(func: tuple[str, int, str]) -> str | None:
    filename, _line, name = func
    where = filename if filename != "~" else name
    for label, fragments in COMPONENTS:
        if any(f in where for f in fragments):
            return label
    return None


def profile_breakdown(files: list[Path]) -> tuple[list[tuple[str, float]], float, int]:
    """Self time by component (built-ins charged to their callers); total seconds; deliveries."""
    import pstats

    stats = pstats.Stats(*[str(f) for f in files])
    totals: dict[str, float] = {}
    entries = stats.stats  # type: ignore[attr-defined]
    for func, (_cc, _nc, tt, _ct, callers) in entries.items():
        label = _component(func)
        if label is None and func[0] == "~" and callers:
            # A built-in (isinstance, dict.get, …): charge it to whoever called it.
            for caller, (_c, _n, caller_tt, _t) in callers.items():
                owner = _component(caller) or "other (standard library, builtins)"
                totals[owner] = totals.get(owner, 0.0) + caller_tt
            continue
        label = label or "other (standard library, builtins)"
        totals[label] = totals.get(label, 0.0) + tt
    deliveries = sum(
        nc for func, (_cc, nc, *_rest) in entries.items() if func[2] == "receive" and "app/webhook/views.py" in func[0]
    )
    return sorted(totals.items(), key=lambda kv: -kv[1]), sum(totals.values()), deliveries


def memory_without_preload(database_url: str, args: argparse.Namespace, wrk: str) -> dict[str, Any] | None:
    """The app's memory under the same load when gunicorn does not --preload (for comparison:
    every worker then imports the app itself, nothing is shared with the master)."""
    render_args = os.environ.get("GUNICORN_CMD_ARGS", RENDER_GUNICORN_CMD_ARGS)
    if "--preload" not in render_args.split():
        return None
    env = {**SERVER_ENV, "GUNICORN_CMD_ARGS": " ".join(a for a in render_args.split() if a != "--preload")}
    gunicorn = BenchGunicorn("ingest-app-no-preload", "wsgi:app", database_url, env)
    prefix = f"wamid.n{int(time.time()) % 100000}."
    items = build_workload(prefix, int(args.duration * args.max_rate) + 1000, 1, seed=55)
    path = DATA_DIR / "ingest-no-preload.tsv"
    write_workload(items, path)
    try:
        gunicorn.start()
        result = run_wrk(
            wrk, gunicorn.base_url + WEBHOOK_PATH, path, args.wrk_threads, args.connections, args.duration, args.timeout
        )
        positions = result.issued_positions(args.wrk_threads, len(items))
        check_stored("ours", database_url, gunicorn.base_url, items, positions, prefix)
    finally:
        gunicorn.stop()
    if gunicorn.memory is None:
        return None
    return {"label": f"this project without --preload ({gunicorn.name})", "memory": gunicorn.memory.as_dict()}


def profile_run(database_url: str, args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    """One loaded run (1 message per delivery) against the app with cProfile in every worker."""
    directory = DATA_DIR / "profile"
    shutil.rmtree(directory, ignore_errors=True)
    env = {**SERVER_ENV, "BENCH_PROFILE_DIR": str(directory)}
    gunicorn = BenchGunicorn("ingest-profile", "wsgi:app", database_url, env, config="bench/gunicorn_profile.conf.py")
    prefix = f"wamid.p{int(time.time()) % 100000}."
    items = build_workload(prefix, int(args.duration * 1500) + 1000, 1, seed=99)
    path = DATA_DIR / "ingest-profile.tsv"
    write_workload(items, path)
    try:
        gunicorn.start()
        result = run_wrk(
            wrk, gunicorn.base_url + WEBHOOK_PATH, path, args.wrk_threads, args.connections, args.duration, args.timeout
        )
        check_stored(
            "ours",
            database_url,
            gunicorn.base_url,
            items,
            result.issued_positions(args.wrk_threads, len(items)),
            prefix,
        )
    finally:
        gunicorn.stop()  # graceful: every worker dumps its profile on exit
    files = sorted(directory.glob("worker-*.prof"))
    if not files:
        return {"error": "no profile was written"}
    components, total_s, deliveries = profile_breakdown(files)
    return {
        "rate": result.rate,
        "deliveries": deliveries,
        "total_ms_per_delivery": total_s * 1000 / max(1, deliveries),
        "components": [
            (label, seconds * 1000 / max(1, deliveries), seconds / total_s) for label, seconds in components
        ],
        "workers": len(files),
    }


# --- report -------------------------------------------------------------------------------------


def targets(result: IngestResult) -> list[TargetCheck]:
    checks = []
    for per in sorted({p for (_k, p, _m) in result.measures}):
        ours = result.measures[("ours", per, "load")]
        base = result.measures[("baseline", per, "load")]
        rate, base_rate = ours.med("rate"), base.med("rate")
        paired = [o / b for o, b in zip(ours.rate, base.rate, strict=False) if b]
        checks.append(
            TargetCheck(
                f"≥ {TARGET_DELIVERIES_PER_S:g} deliveries/s, {per} message{'s' if per > 1 else ''} per delivery",
                f"{fmt_rps(rate)} /s (rounds {fmt_rps(min(ours.rate))}–{fmt_rps(max(ours.rate))})",
                rate is not None and rate >= TARGET_DELIVERIES_PER_S,
            )
        )
        checks.append(
            TargetCheck(
                f"≥ {TARGET_RATIO:g} × the minimal handler, {per} message{'s' if per > 1 else ''} per delivery",
                f"{ratio(rate, base_rate)} ({fmt_rps(rate)} vs {fmt_rps(base_rate)} /s; per round "
                + ", ".join(f"{p:.2f}" for p in paired)
                + ")",
                bool(rate and base_rate and rate / base_rate >= TARGET_RATIO),
            )
        )
        checks.append(
            TargetCheck(
                f"≥ {TARGET_RATIO_OVERHEAD:g} × the minimal handler (issue 14), {per} message{'s' if per > 1 else ''}"
                " per delivery",
                f"{ratio(rate, base_rate)}; per round " + ", ".join(f"{p:.2f}" for p in paired),
                bool(rate and base_rate and rate / base_rate >= TARGET_RATIO_OVERHEAD),
            )
        )
    checks.append(
        TargetCheck(
            "exactly one stored row per distinct message after every run",
            f"{sum(len(m.checks) for m in result.measures.values())} runs checked",
            all(c.exact for m in result.measures.values() for c in m.checks),
        )
    )
    return checks + memory_targets(result.memory, "the ingest benchmark")


def _cpus(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def results_table(result: IngestResult) -> list[str]:
    rows = []
    for per in sorted({p for (_k, p, _m) in result.measures}):
        for key in KEYS:
            load = result.measures[(key, per, "load")]
            single = result.measures.get((key, per, "single"))
            rate = load.med("rate")
            stmts = result.statements.get((key, per))
            rows.append(
                [
                    per,
                    f"**{NAMES[key]}**" if key == "ours" else NAMES[key],
                    fmt_rps(rate),
                    fmt_rps(rate * per * 0.9 if rate else None),
                    fmt_ms(load.med("p50")),
                    fmt_ms(load.med("p99")),
                    fmt_ms(single.med("p50") if single else None),
                    fmt_ms(single.med("p99") if single else None),
                    ", ".join(fmt_ms(load.med(k)) for k in ("cpu_server_ms", "cpu_pg_ms", "cpu_wrk_ms")),
                    ", ".join(_cpus(load.med(k)) for k in ("machine_busy", "others_busy", "steal")),
                    stmts.cell() if stmts else "—",
                ]
            )
    header = (
        "messages / delivery | handler | deliveries/s | messages/s | p50 ms (load) | p99 ms (load) "
        "| p50 ms (1 conn.) | p99 ms (1 conn.) | CPU ms / delivery: gunicorn, PostgreSQL, wrk "
        "| CPUs busy: all, other jobs, stolen | SQL / delivery"
    )
    return md_table(header, "rlrrrrrrlll", rows)


def statement_lines(result: IngestResult) -> list[str]:
    out = []
    for (key, per), count in sorted(result.statements.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        total = sum((count.times or {}).get(s, 0.0) * calls for s, calls in count.statements)
        out.append(
            f"- {NAMES[key]}, {per} message{'s' if per > 1 else ''} per delivery: {count.cell()} statements, "
            f"{total:.2f} ms of execution inside PostgreSQL per delivery (sum of mean times):"
        )
        for statement, calls in count.statements[:14]:
            shown = statement if len(statement) <= 140 else statement[:137] + "…"
            mean = (count.times or {}).get(statement)
            out.append(f"  - {calls:g} × {fmt_ms(mean)} ms `{shown}`")
    return out


def answer_lines(result: IngestResult) -> list[str]:
    """Answers other than 200 under load (Meta delivers those again) and the errors logged."""
    lines = []
    for key in KEYS:
        statuses: dict[str, int] = {}
        for (k, _per, _mode), m in result.measures.items():
            if k == key:
                for status, n in m.statuses.items():
                    statuses[status] = statuses.get(status, 0) + n
        total = sum(m.requests for (k, _p, _m), m in result.measures.items() if k == key)
        errors = result.errors.get(key, {})
        answered = ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items())) or "none"
        logged = "; ".join(f"{n} × “{event}”" for event, n in sorted(errors.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"- {NAMES[key]}: answers other than 200 during the timed runs: {answered} (of {total:,} answered)"
            + (f"; errors logged: {logged}" if logged else "")
            + "."
        )
    lines += [
        "",
        "A delivery not answered 200 is delivered again by Meta; the count below re-posts it the same way, "
        "so every message still ends up stored exactly once.",
        "",
    ]
    return lines


def profile_lines(result: IngestResult) -> list[str]:
    profile = result.profile
    if not profile:
        return []
    if "error" in profile:
        return ["### Where the time goes: inside a worker", "", f"cProfile run failed: {profile['error']}.", ""]
    lines = [
        "### Where the time goes: inside a worker",
        "",
        f"One more {result.settings['duration']:g}-second run, 1 message per delivery, against the app started with "
        "`bench/gunicorn_profile.conf.py` (the project's settings, plus a per-thread cProfile around every "
        f"request in every worker; {profile['workers']} worker profiles merged, {profile['deliveries']:,} deliveries, "
        f"{fmt_rps(profile['rate'])} deliveries/s under the profiler). The profiler's clock is each thread's CPU "
        "time, so this is where the workers' CPU goes (time blocked on PostgreSQL or on the GIL is not in it); "
        "self time by component, built-ins charged to their caller. cProfile inflates code that makes many "
        "small Python calls (SQLAlchemy, Flask), so read the shares rather than the milliseconds; gunicorn's "
        "own HTTP handling is outside the profile (it is in the CPU per delivery above).",
        "",
        "| component | share of the request | profiled ms / delivery |",
        "|---|---:|---:|",
    ]
    for label, ms, share in profile["components"]:
        if share >= 0.005:
            lines.append(f"| {label} | {share * 100:.0f} % | {ms:.2f} |")
    lines += [f"| total | 100 % | {profile['total_ms_per_delivery']:.2f} |", ""]
    return lines


def _sql_ms(count: StatementCount | None) -> float | None:
    if count is None or not count.times:
        return None
    return sum(count.times.get(statement, 0.0) * calls for statement, calls in count.statements)


def cpu_sentence(result: IngestResult, per: int) -> str:
    """Where the difference comes from, in CPU per delivery, and what two dedicated cores allow."""
    ours = result.measures[("ours", per, "load")]
    base = result.measures[("baseline", per, "load")]

    def total(m: Measure) -> float:
        return (m.med("cpu_server_ms") or 0.0) + (m.med("cpu_pg_ms") or 0.0) + (m.med("cpu_wrk_ms") or 0.0)

    ours_sql = _sql_ms(result.statements.get(("ours", per)))
    base_sql = _sql_ms(result.statements.get(("baseline", per)))
    cpus = psutil.cpu_count() or 2
    return (
        f"CPU per delivery, all processes: {fmt_ms(total(ours))} ms vs {fmt_ms(total(base))} ms "
        f"({ratio(total(base), total(ours))}): in gunicorn {fmt_ms(ours.med('cpu_server_ms'))} vs "
        f"{fmt_ms(base.med('cpu_server_ms'))} ms, in PostgreSQL {fmt_ms(ours.med('cpu_pg_ms'))} vs "
        f"{fmt_ms(base.med('cpu_pg_ms'))} ms (of which executing the statements: {fmt_ms(ours_sql)} vs "
        f"{fmt_ms(base_sql)} ms; the rest is protocol, parsing, planning, commits and process switches). "
        f"Other jobs took {_cpus(ours.med('others_busy'))} of the {cpus} CPUs during this project's runs; on "
        f"{cpus} dedicated CPUs this CPU cost would allow about {fmt_rps(cpus * 1000 / total(ours))} deliveries/s "
        f"(an estimate: {cpus} CPUs ÷ CPU per delivery; minimal handler {fmt_rps(cpus * 1000 / total(base))})."
        if total(ours) and total(base)
        else "CPU per delivery: not measured."
    )


def report(result: IngestResult, args: argparse.Namespace) -> tuple[list[str], list[TargetCheck]]:
    checks = targets(result)
    sizes = sorted({p for (_k, p, _m) in result.measures})
    ratios = []
    for per in sizes:
        ours = result.measures[("ours", per, "load")]
        base = result.measures[("baseline", per, "load")]
        ratios.append(
            f"- {per} message{'s' if per > 1 else ''} per delivery: this project sustains "
            f"{ratio(ours.med('rate'), base.med('rate'))} the minimal handler's deliveries/s "
            f"(per round: {', '.join(f'{o / b:.2f}' for o, b in zip(ours.rate, base.rate, strict=False) if b)}); "
            f"latency under load {ratio(ours.med('p50'), base.med('p50'))} its p50; "
            f"one delivery at a time, {fmt_ms(result.measures[('ours', per, 'single')].med('p50'))} ms vs "
            f"{fmt_ms(result.measures[('baseline', per, 'single')].med('p50'))} ms at p50."
            if ("ours", per, "single") in result.measures
            else f"- {per} per delivery: {ratio(ours.med('rate'), base.med('rate'))} the minimal handler's rate."
        )
        ratios.append("  " + cpu_sentence(result, per))
    checks_lines = []
    for (key, per, mode), m in sorted(result.measures.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        for c in m.checks:
            checks_lines.append(
                f"- {NAMES[key]}, {per} msg/delivery, {mode}: {c.summary()}"
                + (
                    f"; {c.deliveries:,} webhook_deliveries rows, {c.attempts:,} attempts"
                    if c.deliveries is not None
                    else ""
                )
            )
    per_round = [
        rounds_line(f"{NAMES[key]}, {per} msg/delivery, load", rate=m.rate, p50=m.p50, p99=m.p99)
        if mode == "load"
        else rounds_line(f"{NAMES[key]}, {per} msg/delivery, 1 connection", p50=m.p50, p99=m.p99)
        for (key, per, mode), m in sorted(result.measures.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))
    ]
    errors = ", ".join(
        f"{NAMES[k]} {p} msg {mode}: {m.socket_errors} socket errors, {m.exhausted} repeated bodies"
        for (k, p, mode), m in sorted(result.measures.items())
        if m.socket_errors or m.exhausted
    )
    restarts = "; ".join(f"{NAMES[k]}: {w[1]}" for k, w in result.workers.items())
    body = [
        f"## {('Webhook ingest (item 1)')}",
        "",
        "`POST /webhook/whatsapp` of this project — signature check, parsing, the raw delivery kept, contact, "
        "conversation, message and the conversation's summary columns written in one transaction, committed "
        "before the 200 — beside the minimal possible handler (verify the signature, one "
        "`INSERT … ON CONFLICT DO NOTHING` of the message ids, commit: `bench/baselines_ingest.py`), served by "
        "the same gunicorn settings on the same database, with the same signed bodies in the same run.",
        "",
        *run_facts(args.command_line, result.elapsed_s, args.revision, result.load_start, result.load_end),
        f"- Data: {result.label} ({result.setup_note}); 1,000 customers.",
        f"- Load: wrk, {args.wrk_threads} thread(s), {args.connections} keep-alive connections, {args.duration:g} s "
        f"per run, {args.rounds} rounds (order of the two servers alternating); then {args.single_duration:g} s "
        "with 1 connection for the unloaded latency. Every body distinct in a run but the 10 % redeliveries "
        "(5 % byte-identical, 5 % same wamids in another body).",
        "",
        "### Results (medians of the rounds)",
        "",
        *results_table(result),
        "",
        "messages/s = new messages stored per second: deliveries/s × messages per delivery × 0.9 (a tenth "
        "of the deliveries are redeliveries of messages already sent). Latency under load "
        "is wrk's, with every connection busy (queueing included); CPU per delivery is the CPU time the "
        "process trees used during the run divided by the deliveries wrk issued (gunicorn: master + workers; "
        "PostgreSQL: the whole server; wrk: the load generator, to show it is not the bottleneck). "
        f"CPUs busy: of the machine's {psutil.cpu_count()}, during the loaded run, by every process (user, "
        "system, irq), by processes other than this run's (other jobs on the shared machine), and stolen by "
        "the hypervisor. "
        "SQL per delivery from pg_stat_statements over 50 new deliveries posted one by one.",
        "",
        "### Against the baseline",
        "",
        *ratios,
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### Stored rows, counted after every run",
        "",
        *answer_lines(result),
        "The message ids stored under the run's prefix are compared with every message id of every "
        "delivery wrk issued; deliveries still in flight when wrk stopped are posted again; then "
        "`count(*)` and `count(DISTINCT wamid)` must both equal the distinct message ids sent (asserted).",
        "",
        *checks_lines,
        "",
        "### Where the time goes: SQL per delivery",
        "",
        f"From {result.statement_method}; mean execution time per call inside PostgreSQL (the round trips "
        "and the driver's time are not in it).",
        "",
        *statement_lines(result),
        "",
        *profile_lines(result),
        "### Set-up",
        "",
        f"- gunicorn (this project): `{result.commands['ours']}`; minimal handler: `{result.commands['baseline']}`. "
        "Only one of them is under load at a time. gunicorn.conf.py: gthread, 2 workers × 4 threads, "
        f"keep-alive 5 s, max_requests {MAX_REQUESTS_TEXT} (as in production) — "
        f"worker restarts: {restarts}.",
        "- Environment: `APP_ENV=production` (JSON logs: the app's access line per request, which carries the "
        "delivery's outcome, plus gunicorn's access line), `WHATSAPP_APP_SECRET` set; pool from "
        "`config.engine_options()` (4 + 2 per worker, pre-ping) for both servers.",
        "- Socket errors and repeated bodies: " + (errors or "none") + ".",
        "",
        "### Per-round figures",
        "",
        *per_round,
    ]
    return body, checks


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench database again")
    parser.add_argument("--keep-database", action="store_true", help="keep the copy the run wrote to")
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the run with cProfile inside the workers"
    )
    args = parser.parse_args(argv)
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.ingest_benchmark", *argv]).strip()
    return args


def add_arguments(parser: argparse.ArgumentParser, rounds: int = 3, duration: float = 10.0) -> None:
    parser.add_argument("--rounds", type=int, default=rounds, help=f"rounds; figures are medians (default {rounds})")
    parser.add_argument("--duration", type=float, default=duration, help="seconds of each loaded wrk run")
    parser.add_argument("--single-duration", type=float, default=3.0, help="seconds of each 1-connection run")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections (default 16)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk's request timeout, seconds")
    parser.add_argument(
        "--max-rate", type=float, default=2500.0, help="deliveries/s the generated bodies suffice for (per run)"
    )
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5], help="messages per delivery"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    apply_bench_env()
    args.revision = code_revision()
    ensure_wrk()
    server = BenchServer()
    result = run(server, args)
    body, checks = report(result, args)
    publish("ingest", body, checks, result.memory, args.revision, server)
    sys.stdout.write("\n".join(results_table(result)) + "\n\n")
    sys.stdout.write("\n".join(c.line() for c in targets(result)) + "\n\n")
    for key, m in result.memory.items():
        sys.stdout.write(f"memory {key}: peak RSS sum {fmt_mb(m['peak_rss'])}, peak PSS sum {fmt_mb(m['peak_pss'])}\n")
    sys.stdout.write(f"Wrote the ingest section of bench/RESULTS.md in {result.elapsed_s / 60:.1f} min.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
