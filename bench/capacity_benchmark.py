"""Capacity at Render's size (issue 14): the service confined to 0.5 CPU and 512 MB, beside baselines.

    .venv/bin/python -m bench.capacity_benchmark [--rounds 3] [--sessions 3]   (`make bench` runs it)

Render's starter web service has 0.5 CPU and 512 MB. Here gunicorn — with the repository's
gunicorn.conf.py, Render's GUNICORN_CMD_ARGS (`--preload --access-logfile -`), its two gthread
workers and the in-process jobs worker (JOBS_IN_WEB, as deployed) — runs with its whole process
tree in a cgroup v1 of its own: `cpu.cfs_period_us` 100000 and `cpu.cfs_quota_us` 50000 (0.5 CPU)
under /sys/fs/cgroup/cpu, `memory.limit_in_bytes` 512M under /sys/fs/cgroup/memory, and a
cpuacct group for its CPU time. A two-line shell wrapper writes its own pid to each group's
`cgroup.procs` and then execs gunicorn, so the master, the workers it forks and the jobs worker
are all inside before any of them exists. PostgreSQL stays outside, as on Render (the bench
database server of bench/common.py: embedded, or BENCH_DATABASE_URL). The groups are created
inside the cgroups this process is already in and removed at the end. Where cgroups v1 are not
writable (not root, no v1 mounts) the benchmark says so in one line, here and in RESULTS.md.

Three services run at once, one under load at a time, each in its own groups:

* this project, 0.5 CPU / 512 MB (`wsgi:app`);
* the baselines, 0.5 CPU / 512 MB (`bench.baselines_capacity:app`: the minimal webhook handler
  of bench/baselines_ingest.py and the analysis' proposed list query of bench/baselines.py),
  without the jobs worker;
* this project unconfined (groups for accounting only: no quota, no limit), the reference.

Measured on a throw-away copy of the analysis' scale (500 conversations × 10 messages, the
database the list and ingest benchmarks seed), in rounds; figures are medians of the rounds:

* (b) list requests/s: `GET /whatsapp/api/conversaciones?page=1&per_page=50` with an agent's
  API token (the baseline: `/proposed/conversaciones`), wrk with 8 keep-alive connections;
* (c) idle agents: the cgroup's CPU time (`cpuacct.usage`) over windows with no browser, then
  with `--sessions` real Chromium sessions (Debian's /usr/bin/chromium through Playwright, as
  tests/browser.py launches it) logged in and idle on the inbox with a conversation open (the
  list and the thread polled every 2 s); (with − without) ÷ sessions = ms of CPU per second per
  idle agent, and 500 ms/s ÷ that = the idle agents that fill 0.5 CPU;
* (a) sustained signed webhook deliveries/s: the largest offered rate at which the median is
  ≤ 250 ms, under 1 % take over 1 s and every answer is 200 (Meta's limits), the median of the
  step's last quarter too (no queue building up that a longer step would push over). A constant-rate
  (open-loop) driver in this process sends deliveries built and signed by the ingest
  benchmark's generator (1 message each, 10 % redeliveries) on up to `--connections` keep-alive
  connections; latency is counted from each delivery's scheduled time (or the moment the driver
  handed it to the connections, when the driver itself ran late), so queueing shows. The
  first round climbs ×1.5 from `--start-rate` to the first failing rate and bisects twice; the
  later rounds climb ×1.1 from 0.85 × the best round so far (×1.3 after three passes, then
  bisect to within 10 %). After every step the stored rows
  are counted (exactly one per message id, as the ingest benchmark asserts);
* (d) memory: the cgroup's `memory.max_usage_in_bytes` (page cache charged to the group
  included), its `failcnt`, and the summed Rss and Pss of every process in the group
  (/proc/<pid>/smaps_rollup), sampled twice a second.

Results go to the "Capacity" section of bench/RESULTS.md, set against the capacity analysis'
load (/work/shared/docs/capacity-analysis.es.md: 2,000 messages a day, peaks of 5–10/s, 5 users).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from bench.common import (
    BENCH_AGENT,
    MAX_REQUESTS_TEXT,
    ROOT,
    BenchGunicorn,
    BenchServer,
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
    percentile,
    prepare_database,
    publish,
    run_facts,
    setup_logging,
)

MB = 1024 * 1024
CPU_PERIOD_US = 100_000
CPU_QUOTA_US = 50_000  # 0.5 CPU, Render's starter plan
MEMORY_LIMIT = 512 * MB
CONTROLLERS = ("cpu", "cpuacct", "memory")
CGROUP_PREFIX = "inbox-capacity-"
CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
LIST_PATH = "/whatsapp/api/conversaciones"
BASELINE_LIST_PATH = "/proposed/conversaciones"
WEBHOOK_PATH = "/webhook/whatsapp"
GET_SCRIPT = ROOT / "bench" / "capacity_get.lua"
COPY_DATABASE = "inbox_bench_capacity"
BENCH_PASSWORD = "bench-password-123"  # bench/common.prepare_database's agent
# Meta's limits for a webhook: the median answered within 250 ms, under 1 % over 1 s.
MEDIAN_LIMIT_MS = 250.0
SLOW_MS = 1000.0
SLOW_SHARE = 0.01
# The capacity analysis' load (/work/shared/docs/capacity-analysis.es.md).
ANALYSIS_PEAK_PER_S = 10.0
ANALYSIS_USERS = 5
TARGET_DELIVERIES_PER_S = 150.0  # issue 14, at Render's size
TARGET_IDLE_MS = 1.0  # issue 14: an open, idle inbox costs ≤ 1 ms of CPU per second
KEYS = ("ours", "baseline", "free")
NAMES = {
    "ours": "this project, 0.5 CPU / 512 MB",
    "baseline": "baselines, 0.5 CPU / 512 MB",
    "free": "this project, unconfined",
}
APP_SECRET = "bench-app-secret"  # bench/ingest_benchmark.APP_SECRET (its signed bodies)

# The wrapper every confined gunicorn starts through: it moves itself into the groups named by
# CAPACITY_CGROUP_PROCS (`cgroup.procs` files, space-separated), then becomes gunicorn (exec keeps
# the pid), so every process gunicorn forks is born inside.
CGROUP_EXEC = 'for procs in $CAPACITY_CGROUP_PROCS; do echo $$ > "$procs" || exit 97; done; exec "$@"'


# --- reading cgroup v1 and /proc (pure helpers) -------------------------------------------------


def parse_cgroup_mounts(mounts: str) -> dict[str, Path]:
    """Controller → mount point of each cgroup v1 hierarchy in /proc/mounts ("cpu,cpuacct" too)."""
    found: dict[str, Path] = {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "cgroup":
            continue
        for option in fields[3].split(","):
            if option in CONTROLLERS:
                found.setdefault(option, Path(fields[1]))
    return found


def parse_proc_cgroup(content: str) -> dict[str, str]:
    """Controller → this process's group path, from /proc/<pid>/cgroup (v1 lines only)."""
    paths: dict[str, str] = {}
    for line in content.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


def parse_keyed(content: str) -> dict[str, int]:
    """`key value` lines (cpu.stat, memory.stat, memory.oom_control) as integers."""
    values: dict[str, int] = {}
    for line in content.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"-?\d+", parts[1]):
            values[parts[0]] = int(parts[1])
    return values


def parse_smaps_rollup(content: str) -> dict[str, int]:
    """The kB figures of /proc/<pid>/smaps_rollup (Rss, Pss, …), in bytes."""
    values: dict[str, int] = {}
    for line in content.splitlines():
        match = re.match(r"^(\w+):\s+(\d+) kB$", line.strip())
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values


def cgroup_unavailable(mounts: str, euid: int, writable: Callable[[Path], bool]) -> str | None:
    """Why the groups cannot be made here, or None: root, and v1 cpu, cpuacct and memory writable."""
    if euid != 0:
        return "not running as root (cgroup v1 groups need root)"
    found = parse_cgroup_mounts(mounts)
    missing = [c for c in CONTROLLERS if c not in found]
    if missing:
        return "no cgroup v1 hierarchy for " + ", ".join(missing) + " (cgroup v2 only, or not mounted)"
    for controller in CONTROLLERS:
        if not writable(found[controller]):
            return f"{found[controller]} is not writable"
    return None


def skip_line(reason: str) -> str:
    return f"Capacity benchmark skipped: {reason}; it needs cgroup v1 (cpu, cpuacct, memory) writable as root."


# --- a group of the service ---------------------------------------------------------------------


class Cgroup:
    """One cgroup v1 group in each of the cpu, cpuacct and memory hierarchies (a directory each,
    inside the group this process is in), optionally with the CPU quota and the memory limit."""

    def __init__(self, name: str, *, cpu_quota_us: int | None, memory_limit: int | None) -> None:
        mounts = parse_cgroup_mounts(Path("/proc/mounts").read_text())
        own = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
        self.name = name
        self.cpu_quota_us = cpu_quota_us
        self.memory_limit = memory_limit
        self.dirs = {c: mounts[c] / own.get(c, "/").lstrip("/") / name for c in CONTROLLERS}

    @property
    def unique_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))  # cpu and cpuacct may share a hierarchy

    @property
    def procs_files(self) -> str:
        return " ".join(str(d / "cgroup.procs") for d in self.unique_dirs)

    def create(self) -> None:
        for directory in self.unique_dirs:
            directory.mkdir()
        if self.cpu_quota_us is not None:
            (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(self.cpu_quota_us))
        if self.memory_limit is not None:
            (self.dirs["memory"] / "memory.limit_in_bytes").write_text(str(self.memory_limit))

    def read(self, controller: str, name: str) -> str:
        return (self.dirs[controller] / name).read_text()

    def cpu_ns(self) -> int:
        return int(self.read("cpuacct", "cpuacct.usage"))

    def cpu_stat(self) -> dict[str, int]:
        return parse_keyed(self.read("cpu", "cpu.stat"))

    def pids(self) -> list[int]:
        return [int(p) for p in self.read("memory", "cgroup.procs").split()]

    def memory(self) -> dict[str, int]:
        stat = parse_keyed(self.read("memory", "memory.stat"))
        oom = parse_keyed(self.read("memory", "memory.oom_control"))
        return {
            "usage": int(self.read("memory", "memory.usage_in_bytes")),
            "max_usage": int(self.read("memory", "memory.max_usage_in_bytes")),
            "failcnt": int(self.read("memory", "memory.failcnt")),
            "rss": stat.get("rss", 0),
            "cache": stat.get("cache", 0),
            "oom_kill": oom.get("oom_kill", 0),
        }

    def settings(self) -> dict[str, str]:
        return {
            "cpu.cfs_period_us": self.read("cpu", "cpu.cfs_period_us").strip(),
            "cpu.cfs_quota_us": self.read("cpu", "cpu.cfs_quota_us").strip(),
            "memory.limit_in_bytes": self.read("memory", "memory.limit_in_bytes").strip(),
        }

    def remove(self) -> None:
        """Kill what is left inside (only processes this benchmark started), then remove the groups."""
        deadline = time.monotonic() + 10
        for directory in self.unique_dirs:
            while directory.exists():
                with contextlib.suppress(OSError, ValueError):
                    for pid in (directory / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        log.warning("could not remove the cgroup %s", directory)
                        break
                    time.sleep(0.2)


def remove_stale_groups() -> None:
    """Empty groups left by an earlier run of this benchmark that was killed."""
    with contextlib.suppress(OSError):
        mounts = parse_cgroup_mounts(Path("/proc/mounts").read_text())
        own = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
        for controller, mount in mounts.items():
            parent = mount / own.get(controller, "/").lstrip("/")
            for stale in parent.glob(CGROUP_PREFIX + "*"):
                with contextlib.suppress(OSError):
                    if not (stale / "cgroup.procs").read_text().strip():
                        stale.rmdir()


class ConfinedGunicorn(BenchGunicorn):
    """BenchGunicorn started through the wrapper that puts it in `cgroup` before it forks."""

    def __init__(self, name: str, app_spec: str, database_url: str, env: dict[str, str], cgroup: Cgroup) -> None:
        super().__init__(name, app_spec, database_url, env)
        self.cgroup = cgroup
        self.gunicorn_args = list(self.args)
        self.args = ["/bin/sh", "-c", CGROUP_EXEC, "cgroup-exec", *self.gunicorn_args]
        self.env["CAPACITY_CGROUP_PROCS"] = cgroup.procs_files
        self.sampler_: GroupSampler | None = None

    @property
    def command(self) -> str:
        cmd = " ".join(["gunicorn", *self.gunicorn_args[3:]])
        extra = self.env.get("GUNICORN_CMD_ARGS", "")
        return f'GUNICORN_CMD_ARGS="{extra}" {cmd}' if extra else cmd

    def spawned(self, pid: int) -> None:
        super().spawned(pid)
        self.sampler_ = GroupSampler(self.cgroup)
        self.sampler_.start()

    def stop(self) -> None:
        if self.sampler_ is not None:
            self.sampler_.stop()
        super().stop()


class GroupSampler:
    """Twice a second: the group's memory (usage, anonymous, cache) and the summed Rss and Pss
    of every process in it (/proc/<pid>/smaps_rollup); keeps the peaks."""

    def __init__(self, cgroup: Cgroup, interval: float = 0.5) -> None:
        self.cgroup = cgroup
        self.interval = interval
        self.peak: dict[str, int] = {"rss_sum": 0, "pss_sum": 0, "processes": 0, "usage": 0, "anon": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"group-{cgroup.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                rss = pss = 0
                pids = self.cgroup.pids()
                for pid in pids:
                    with contextlib.suppress(OSError):
                        rollup = parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
                        rss += rollup.get("Rss", 0)
                        pss += rollup.get("Pss", 0)
                mem = self.cgroup.memory()
                sample = {"rss_sum": rss, "pss_sum": pss, "processes": len(pids), "usage": mem["usage"]}
                sample["anon"] = mem["rss"]
                for key, value in sample.items():
                    self.peak[key] = max(self.peak[key], value)
            self._stop.wait(self.interval)


# --- (a) the constant-rate webhook driver -------------------------------------------------------


@dataclass
class Step:
    """One offered rate for `duration` seconds: what came back."""

    offered: float
    sent: int
    latencies_ms: list[float]
    statuses: dict[int, int]  # status → count; -1 connection lost 3 times, -2 timed out
    resets: int
    elapsed_s: float
    cpu_s: float = 0.0
    throttled: int = 0
    check: str = ""
    lag_ms: float = 0.0  # the driver's own lateness: p99 of (dispatched − scheduled)
    machine_busy: float = 0.0  # CPUs of the machine busy meanwhile, every process counted

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50) if self.latencies_ms else 0.0

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99) if self.latencies_ms else 0.0

    @property
    def slow_share(self) -> float:
        return sum(1 for v in self.latencies_ms if v > SLOW_MS) / max(1, len(self.latencies_ms))

    @property
    def achieved(self) -> float:
        return self.statuses.get(200, 0) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def passes(self) -> bool:
        return step_passes(self.latencies_ms, self.non_200)

    def why(self) -> str:
        if self.passes:
            return "within"
        reasons = []
        if self.non_200:
            reasons.append(f"{self.non_200} not 200")
        if self.p50 > MEDIAN_LIMIT_MS:
            reasons.append("median > 250 ms")
        if self.slow_share >= SLOW_SHARE:
            reasons.append(f"{self.slow_share * 100:.0f} % > 1 s")
        if self.latencies_ms and percentile(tail_quarter(self.latencies_ms), 50) > MEDIAN_LIMIT_MS:
            reasons.append("falling behind: median > 250 ms over the last quarter")
        return "; ".join(reasons)


def step_passes(latencies_ms: list[float], non_200: int) -> bool:
    """Meta's limits: every answer 200, median ≤ 250 ms, under 1 % over 1 s — and still a median
    ≤ 250 ms over the step's last quarter (`latencies_ms` in the order the deliveries were
    scheduled): a server falling behind builds a queue that a longer step would push over."""
    if not latencies_ms or non_200:
        return False
    slow = sum(1 for v in latencies_ms if v > SLOW_MS) / len(latencies_ms)
    return (
        percentile(latencies_ms, 50) <= MEDIAN_LIMIT_MS
        and slow < SLOW_SHARE
        and percentile(tail_quarter(latencies_ms), 50) <= MEDIAN_LIMIT_MS
    )


def tail_quarter(values: list[float]) -> list[float]:
    return values[len(values) - max(1, len(values) // 4) :]


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() == "close"


async def _drive(
    host: str, port: int, requests_: list[bytes], rate: float, connections: int, timeout: float
) -> tuple[list[float], dict[int, int], int, float, float]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies = [0.0] * len(requests_)
    answers = [0] * len(requests_)
    resets = 0
    start = loop.time() + 0.05
    last_done = start
    lags: list[float] = []

    async def connection() -> None:
        nonlocal resets, last_done
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (job := await queue.get()) is not None:
            i, handed = job
            status, close = -1, True
            for _attempt in range(3):
                try:
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    writer.write(requests_[i])
                    status, close = await asyncio.wait_for(_read_answer(reader), timeout)
                    break
                except TimeoutError:
                    status, close = -2, True
                    break
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    # A keep-alive connection closed under us (a worker restarting at max_requests):
                    # sent again on a new one, as Meta redelivers; the time counts.
                    resets += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
            now = loop.time()
            latencies[i] = (now - handed) * 1000
            answers[i] = status
            last_done = max(last_done, now)
            if close and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(connections)]
    for i in range(len(requests_)):
        intended = start + i / rate
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        handed = loop.time()
        lags.append((handed - intended) * 1000)
        # Latency counts from here: the scheduled time, or later when the driver itself ran late
        # (a starved machine; reported as its lateness), never from the moment a connection is free.
        queue.put_nowait((i, handed))
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    statuses: dict[int, int] = {}
    for status in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return latencies, statuses, resets, last_done - start, percentile(lags, 99)


def webhook_requests(items: list[Any], port: int) -> list[bytes]:
    out = []
    for item in items:
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {item.signature}\r\nContent-Length: {len(item.body)}\r\n\r\n"
        )
        out.append(head.encode() + item.body)
    return out


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Service:
    key: str
    gunicorn: ConfinedGunicorn
    cgroup: Cgroup
    settled_s: float = 0.0  # from /healthz answering to the group at rest (wait_settled)
    list_rps: list[float] = field(default_factory=list)
    list_p50: list[float] = field(default_factory=list)
    list_p99: list[float] = field(default_factory=list)
    list_not_ok: int = 0
    idle_base_ms: list[float] = field(default_factory=list)  # CPU ms per second, no browser
    idle_ms: list[float] = field(default_factory=list)  # CPU ms per second, with the sessions
    idle_polls: list[float] = field(default_factory=list)  # fragment and stream requests per second, all sessions
    idle_statuses: dict[int, int] = field(default_factory=dict)
    sustained: list[float] = field(default_factory=list)  # per round
    steps: list[list[Step]] = field(default_factory=list)  # per round
    memory: dict[str, int] = field(default_factory=dict)
    cpu_stat: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.gunicorn.base_url

    def best_step(self) -> Step | None:
        """The passing step at the median sustained rate (its latencies and CPU), if any."""
        target = median(self.sustained)
        passing = [s for steps in self.steps for s in steps if s.passes]
        if not passing or target is None:
            return None
        return min(passing, key=lambda s: abs(s.offered - target))

    def idle_per_agent(self, sessions: int) -> float | None:
        with_, without = median(self.idle_ms), median(self.idle_base_ms)
        if with_ is None or without is None or not sessions:
            return None
        return max(0.0, (with_ - without) / sessions)


def run_wrk_get(url: str, token: str | None, connections: int, duration: float) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout=10s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    command += ["-s", str(GET_SCRIPT), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
    data: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def measure_list(services: dict[str, Service], token: str, args: argparse.Namespace) -> None:
    from bench.list_benchmark import SCALES, Target, check_response

    scale = SCALES["small"]
    urls = {}
    for key, service in services.items():
        path, auth = (
            (BASELINE_LIST_PATH, {}) if key == "baseline" else (LIST_PATH, {"Authorization": f"Bearer {token}"})
        )
        target = Target(key, NAMES[key], service.url, path, auth, True)
        check_response(target, 1, scale, auth)  # 50 rows of the 500, before any delivery adds some
        urls[key] = target.url(1)
        run_wrk_get(urls[key], token if key != "baseline" else None, args.list_connections, 1)  # warm-up
    for round_no in range(args.rounds):
        for key in _rotated(list(services), round_no):
            service = services[key]
            result = run_wrk_get(
                urls[key], token if key != "baseline" else None, args.list_connections, args.list_seconds
            )
            service.list_rps.append(result["rps"])
            service.list_p50.append(result["p50_us"] / 1000)
            service.list_p99.append(result["p99_us"] / 1000)
            service.list_not_ok += result["not_ok"] + result["socket_errors"]
            log.info(
                "list  %-9s round %d: %6.1f req/s  p50 %6.1f ms  p99 %6.1f ms  (not 200: %d)",
                key,
                round_no + 1,
                result["rps"],
                service.list_p50[-1],
                service.list_p99[-1],
                result["not_ok"],
            )


def _rotated(keys: list[str], round_no: int) -> list[str]:
    shift = round_no % len(keys)
    return keys[shift:] + keys[:shift]


def chromium_missing() -> str | None:
    from tests.browser import CHROMIUM

    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    return None


def measure_idle(services: dict[str, Service], conversation_id: int, args: argparse.Namespace) -> None:
    from tests.browser import launched_chromium

    keys = [k for k in ("ours", "free") if k in services]
    with launched_chromium() as browser:
        for key in keys:
            service = services[key]
            # The service alone: the jobs worker's polling, gunicorn's heartbeats.
            time.sleep(1)
            for _ in range(args.rounds):
                service.idle_base_ms.append(_cpu_ms_per_s(service.cgroup, args.idle_seconds, None))
            contexts = []
            counts: dict[str, Any] = {"polls": 0, "statuses": {}}

            def seen(response: Any, counts: dict[str, Any] = counts) -> None:
                if "/inbox/fragments/" in response.url or response.url.endswith("/inbox/events"):
                    counts["polls"] += 1
                    counts["statuses"][response.status] = counts["statuses"].get(response.status, 0) + 1

            try:
                pages = []
                for _ in range(args.sessions):
                    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-ES")
                    contexts.append(context)
                    page = context.new_page()
                    _log_in(page, service.url)
                    page.goto(f"{service.url}/?c={conversation_id}")
                    page.locator("#thread").wait_for()
                    page.on("response", seen)
                    pages.append(page)
                pages[0].wait_for_timeout(3000)  # every session past its first polls
                for _ in range(args.rounds):
                    before = counts["polls"]
                    service.idle_ms.append(_cpu_ms_per_s(service.cgroup, args.idle_seconds, pages[0]))
                    service.idle_polls.append((counts["polls"] - before) / args.idle_seconds)
                service.idle_statuses = dict(counts["statuses"])
            finally:
                for context in contexts:
                    context.close()
            per_agent = service.idle_per_agent(args.sessions)
            log.info(
                "idle  %-9s service alone %.2f ms/s; with %d sessions %.2f ms/s (%.2f requests/s) → %s ms/s per agent",
                key,
                median(service.idle_base_ms) or 0.0,
                args.sessions,
                median(service.idle_ms) or 0.0,
                median(service.idle_polls) or 0.0,
                fmt_ms(per_agent),
            )


def _log_in(page: Any, base_url: str) -> None:
    page.goto(base_url + "/login")
    page.locator("#email").fill(BENCH_AGENT)
    page.locator("#password").fill(BENCH_PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_url(base_url + "/")


def _cpu_ms_per_s(cgroup: Cgroup, seconds: float, page: Any | None) -> float:
    """The group's CPU time over `seconds`, in ms per second (the page, if any, pumps Playwright)."""
    before, t0 = cgroup.cpu_ns(), time.perf_counter()
    if page is not None:
        page.wait_for_timeout(seconds * 1000)
    else:
        time.sleep(seconds)
    return (cgroup.cpu_ns() - before) / 1e6 / (time.perf_counter() - t0)


def measure_ingest(services: dict[str, Service], database_url: str, args: argparse.Namespace) -> None:
    from bench.baselines_ingest import CREATE_TABLE
    from bench.ingest_benchmark import build_workload, check_stored, machine_busy

    with autocommit(database_url) as conn:
        conn.execute(text(CREATE_TABLE))
    run_id = f"{int(time.time()) % 100000}"
    counter = {"n": 0}

    def step(service: Service, rate: float) -> Step:
        counter["n"] += 1
        prefix = f"wamid.cap{run_id}{service.key[0]}{counter['n']}."
        count = max(20, round(rate * args.step_seconds))
        items = build_workload(prefix, count, 1, seed=counter["n"])
        payloads = webhook_requests(items, service.gunicorn.port)
        cpu_before, stat_before = service.cgroup.cpu_ns(), service.cgroup.cpu_stat()
        machine_before = psutil.cpu_times()
        latencies, statuses, resets, elapsed, lag = asyncio.run(
            _drive("127.0.0.1", service.gunicorn.port, payloads, rate, args.connections, args.timeout)
        )
        result = Step(rate, count, latencies, statuses, resets, elapsed, lag_ms=lag)
        result.machine_busy = machine_busy(machine_before, psutil.cpu_times())[0]
        result.cpu_s = (service.cgroup.cpu_ns() - cpu_before) / 1e9
        result.throttled = service.cgroup.cpu_stat().get("nr_throttled", 0) - stat_before.get("nr_throttled", 0)
        key = "baseline" if service.key == "baseline" else "ours"
        stored = check_stored(key, database_url, service.url, items, list(range(len(items))), prefix)
        result.check = stored.summary()
        log.info(
            "ingest %-9s %6.1f/s offered: %6.1f/s answered 200, p50 %7.1f ms, p99 %7.1f ms, %4.1f %% > 1 s, "
            "%d not 200, CPU %.2f (machine %.2f) → %s",
            service.key,
            rate,
            result.achieved,
            result.p50,
            result.p99,
            result.slow_share * 100,
            result.non_200,
            result.cpu_s / max(elapsed, 1e-9),
            result.machine_busy,
            result.why(),
        )
        time.sleep(args.pause)
        return result

    for service in services.values():
        step(service, args.start_rate)  # warm-up: every worker, thread, pool connection
    for round_no in range(args.rounds):
        for key in _rotated(list(services), round_no):
            service = services[key]
            at_rate = functools.partial(step, service)
            if round_no == 0:  # ×1.5 from --start-rate, then two bisections (to within 11 %)
                best, steps = search(at_rate, args.start_rate, (1.5,), 2, args.max_rate)
            else:  # near the best so far: ×1.1 three times, then faster if it still passes
                start = 0.85 * max(service.sustained) if max(service.sustained) else args.start_rate
                best, steps = search(at_rate, start, (1.1, 1.1, 1.1, 1.3), 2, args.max_rate)
            service.sustained.append(best)
            service.steps.append(steps)
            log.info("ingest %-9s round %d/%d: sustained %.1f deliveries/s", key, round_no + 1, args.rounds, best)


RESOLUTION = 1.1  # the search stops bisecting once the failing rate is within 10 % of the passing one


def search(
    measure: Callable[[float], Step], start: float, factors: tuple[float, ...], bisections: int, cap: float
) -> tuple[float, list[Step]]:
    """The largest rate that passes: climb from `start` by `factors` (one after another, the last
    repeated) to the first failure, or down ÷ the first factor to the first pass; then bisect
    (geometric) up to `bisections` times, while the gap is wider than RESOLUTION."""
    steps: list[Step] = []

    def passes(rate: float) -> bool:
        steps.append(measure(rate))
        return steps[-1].passes

    rate = start
    if passes(rate):
        good = rate
        for n in itertools.count():
            rate *= factors[min(n, len(factors) - 1)]
            if rate > cap:
                return good, steps
            if not passes(rate):
                bad = rate
                break
            good = rate
    else:
        bad = rate
        good = 0.0
        for _ in range(4):
            rate /= factors[0]
            if passes(rate):
                good = rate
                break
            bad = rate
        if not good:
            return 0.0, steps
    for _ in range(bisections):
        if bad / good <= RESOLUTION + 1e-9:
            break
        rate = (good * bad) ** 0.5
        if passes(rate):
            good = rate
        else:
            bad = rate
    return good, steps


def open_conversation_id(database_url: str) -> int:
    with autocommit(database_url) as conn:
        return int(conn.execute(text("SELECT id FROM conversations ORDER BY updated_at DESC LIMIT 1")).scalar_one())


# A service is measured once it is at rest: /healthz answers as soon as the web workers serve,
# while the jobs worker (a process of its own) is still importing the app — at 0.5 CPU, beside
# the workers, that takes seconds (more where no bytecode is cached: PYTHONDONTWRITEBYTECODE),
# and would be charged to the first steps measured.
SETTLE_CPU = 0.05  # CPUs the group may still use over a window to count as at rest
SETTLE_WINDOW_SECONDS = 1.0
SETTLE_MAX_SECONDS = 120.0


def wait_settled(cgroup: Cgroup, name: str) -> float:
    """Seconds until the group used under SETTLE_CPU over a SETTLE_WINDOW_SECONDS window."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_MAX_SECONDS:
        before = cgroup.cpu_ns()
        time.sleep(SETTLE_WINDOW_SECONDS)
        if (cgroup.cpu_ns() - before) / 1e9 / SETTLE_WINDOW_SECONDS < SETTLE_CPU:
            waited = time.monotonic() - started
            log.info(
                "%s at rest after %.1f s (under %.2f CPU over %.0f s)", name, waited, SETTLE_CPU, SETTLE_WINDOW_SECONDS
            )
            return waited
    log.warning("%s still busy after %.0f s; measuring anyway", name, SETTLE_MAX_SECONDS)
    return SETTLE_MAX_SECONDS


@contextlib.contextmanager
def services_running(database_url: str, args: argparse.Namespace) -> Iterator[dict[str, Service]]:
    env_app = {"WHATSAPP_APP_SECRET": APP_SECRET, "JOBS_IN_WEB": "true"}
    env_base = {"WHATSAPP_APP_SECRET": APP_SECRET, "JOBS_IN_WEB": "false"}
    plan = {
        "ours": ("wsgi:app", env_app, CPU_QUOTA_US, MEMORY_LIMIT),
        "baseline": ("bench.baselines_capacity:app", env_base, CPU_QUOTA_US, MEMORY_LIMIT),
        "free": ("wsgi:app", env_app, None, None),
    }
    services: dict[str, Service] = {}
    with contextlib.ExitStack() as stack:
        for key in args.services:
            app_spec, env, quota, limit = plan[key]
            cgroup = Cgroup(f"{CGROUP_PREFIX}{os.getpid()}-{key}", cpu_quota_us=quota, memory_limit=limit)
            cgroup.create()
            stack.callback(cgroup.remove)
            gunicorn = ConfinedGunicorn(f"capacity-{key}", app_spec, database_url, env, cgroup)
            stack.callback(gunicorn.stop)
            gunicorn.start()
            services[key] = Service(key, gunicorn, cgroup, settled_s=wait_settled(cgroup, key))
        yield services
        for service in services.values():
            service.memory = service.cgroup.memory()
            service.cpu_stat = service.cgroup.cpu_stat()
            if service.gunicorn.sampler_ is not None:
                service.gunicorn.sampler_.stop()
                service.memory.update({f"peak_{k}": v for k, v in service.gunicorn.sampler_.peak.items()})


@dataclass
class Result:
    services: dict[str, Service]
    settings: dict[str, dict[str, str]]
    commands: dict[str, str]
    memory_stats: dict[str, dict[str, Any]]
    workers: dict[str, tuple[int, int]]
    setup_note: str
    elapsed_s: float
    load_start: str
    load_end: str
    uptime_start: str
    uptime_end: str
    idle_note: str


def uptime() -> str:
    with contextlib.suppress(OSError):
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return "load average " + load_average()


def run(server: BenchServer, args: argparse.Namespace) -> Result:
    from bench.ingest_benchmark import INGEST_SCALE
    from bench.list_benchmark import issue_token

    started = time.perf_counter()
    load_start, uptime_start = load_average(), uptime()
    _template, setup_note = prepare_database(server, INGEST_SCALE, args.reseed)
    url = server.copy_database(INGEST_SCALE.database, COPY_DATABASE)
    setup_note += f"; measured on a fresh copy, {COPY_DATABASE}"
    idle_note = ""
    try:
        token, _agent = issue_token(url)
        conversation_id = open_conversation_id(url)
        with services_running(url, args) as services:
            settings = {k: s.cgroup.settings() for k, s in services.items()}
            if "list" in args.phases:
                measure_list(services, token, args)
            missing = chromium_missing() if args.sessions and "idle" in args.phases else "not asked for"
            if missing:
                idle_note = f"idle agents not measured: {missing}"
                log.info(idle_note)
            else:
                measure_idle(services, conversation_id, args)
            if "ingest" in args.phases:
                measure_ingest(services, url, args)
        memory_stats = {
            f"{NAMES[k]} ({s.gunicorn.name})": s.gunicorn.memory.as_dict()
            for k, s in services.items()
            if s.gunicorn.memory is not None
        }
    finally:
        if not args.keep_database:
            server.drop_database(COPY_DATABASE)
    return Result(
        services=services,
        settings=settings,
        commands={k: s.gunicorn.command for k, s in services.items()},
        memory_stats=memory_stats,
        workers={k: s.gunicorn.workers() for k, s in services.items()},
        setup_note=setup_note,
        elapsed_s=time.perf_counter() - started,
        load_start=load_start,
        load_end=load_average(),
        uptime_start=uptime_start,
        uptime_end=uptime(),
        idle_note=idle_note,
    )


# --- report -------------------------------------------------------------------------------------


def _range(values: list[float], fmt: Callable[[float | None], str]) -> str:
    if len(values) < 2:
        return ""
    return f" ({fmt(min(values))}–{fmt(max(values))})"


def _fill(agents: float | None) -> str:
    if not agents:
        return "idle agents fill 0.5 CPU: not measurable (their cost is below the service alone's noise)"
    return f"{agents:,.0f} idle agents fill 0.5 CPU"


def _agents(service: Service | None, sessions: int) -> float | None:
    if service is None:
        return None
    per_agent = service.idle_per_agent(sessions)
    alone = median(service.idle_base_ms) or 0.0
    if not per_agent:
        return None
    return max(0.0, (CPU_QUOTA_US / CPU_PERIOD_US * 1000 - alone) / per_agent)


def capacity_table(result: Result, args: argparse.Namespace) -> list[str]:
    s = result.services
    ours, base, free = s.get("ours"), s.get("baseline"), s.get("free")

    def cell(service: Service | None, fn: Callable[[Service], str]) -> str:
        return "—" if service is None else fn(service)

    def sustained(x: Service) -> str:
        return f"**{fmt_rps(median(x.sustained))}**{_range(x.sustained, fmt_rps)}"

    def latency(x: Service) -> str:
        step = x.best_step()
        return "—" if step is None else f"{fmt_ms(step.p50)} / {fmt_ms(step.p99)}"

    def cpu_per_delivery(x: Service) -> str:
        step = x.best_step()
        return "—" if step is None or not step.sent else f"{fmt_ms(step.cpu_s * 1000 / step.sent)}"

    def quota_ceiling(x: Service) -> str:
        step = x.best_step()
        if step is None or not step.cpu_s:
            return "—"
        return fmt_rps(CPU_QUOTA_US / CPU_PERIOD_US * step.sent / step.cpu_s)

    def list_rps(x: Service) -> str:
        return f"**{fmt_rps(median(x.list_rps))}**{_range(x.list_rps, fmt_rps)}"

    def list_latency(x: Service) -> str:
        return f"{fmt_ms(median(x.list_p50))} / {fmt_ms(median(x.list_p99))}"

    def idle(x: Service) -> str:
        per = x.idle_per_agent(args.sessions)
        return "—" if per is None else f"**{fmt_ms(per)}**"

    def alone(x: Service) -> str:
        return "—" if not x.idle_base_ms else fmt_ms(median(x.idle_base_ms))

    def carried(x: Service) -> str:
        n = _agents(x, args.sessions)
        return "—" if n is None else f"**{n:,.0f}**"

    def memory(x: Service) -> str:
        m = x.memory
        return f"**{fmt_mb(m.get('max_usage', 0) / MB)}** (anon. {fmt_mb(m.get('peak_anon', 0) / MB)})"

    def pss_rss(x: Service) -> str:
        m = x.memory
        return f"{fmt_mb(m.get('peak_pss_sum', 0) / MB)} / {fmt_mb(m.get('peak_rss_sum', 0) / MB)}"

    def limits(x: Service) -> str:
        m = x.memory
        return f"{m.get('failcnt', 0)} / {m.get('oom_kill', 0)}"

    ours_rate = median(ours.sustained) if ours else None
    ours_list = median(ours.list_rps) if ours else None
    per_agent = ours.idle_per_agent(args.sessions) if ours else None
    rows = [
        (
            "sustained signed deliveries/s (median ≤ 250 ms, also over the last quarter; < 1 % over 1 s; only 200s)",
            *(cell(x, sustained) for x in (ours, base, free)),
            f"peaks of 5–10/s (2,000 a day) — {fmt_rps(ours_rate / ANALYSIS_PEAK_PER_S) if ours_rate else '—'}× "
            "the 10/s peak",
        ),
        ("p50 / p99 at that rate, ms", *(cell(x, latency) for x in (ours, base, free)), "Meta: ≤ 250 ms median"),
        (
            "CPU ms per delivery at that rate (in the group)",
            *(cell(x, cpu_per_delivery) for x in (ours, base, free)),
            "",
        ),
        (
            "deliveries/s 0.5 CPU would allow at that CPU cost (0.5 s ÷ CPU per delivery)",
            *(cell(x, quota_ceiling) for x in (ours, base, free)),
            "what a quiet machine approaches",
        ),
        (
            f"list req/s, page 1 of 500 conversations ({args.list_connections} connections; token)",
            *(cell(x, list_rps) for x in (ours, base, free)),
            f"{ANALYSIS_USERS} users, 100–200 API queries a day"
            + (f" — {ours_list / ANALYSIS_USERS:,.0f} req/s per user" if ours_list else ""),
        ),
        ("list p50 / p99 under that load, ms", *(cell(x, list_latency) for x in (ours, base, free)), "alarm: 2 s"),
        (
            f"idle agent: server ms CPU per second ({args.sessions} Chromium sessions, the live stream open)",
            cell(ours, idle),
            "—",
            cell(free, idle),
            f"{ANALYSIS_USERS} users: {fmt_ms(per_agent * ANALYSIS_USERS) if per_agent is not None else '—'} ms/s "
            "of the 500",
        ),
        ("the service alone, idle: ms CPU per second", cell(ours, alone), "—", cell(free, alone), ""),
        (
            "idle agents that fill 0.5 CPU",
            cell(ours, carried),
            "—",
            cell(free, carried) + " (at 0.5 CPU)" if free and _agents(free, args.sessions) else "—",
            f"{ANALYSIS_USERS} users",
        ),
        (
            "peak memory: cgroup max usage (page cache included)",
            *(cell(x, memory) for x in (ours, base, free)),
            "512 MB limit; alarm at 400 MB",
        ),
        ("peak PSS / RSS summed over the group's processes", *(cell(x, pss_rss) for x in (ours, base, free)), ""),
        ("memory limit hits (failcnt) / OOM kills", *(cell(x, limits) for x in (ours, base, free)), "0 / 0"),
    ]
    return md_table(
        f"figure | {NAMES['ours']} | {NAMES['baseline']} | {NAMES['free']} (reference) | the analysis' load",
        "lrrrl",
        rows,
    )


def curve_lines(result: Result) -> list[str]:
    lines: list[str] = []
    for key, service in result.services.items():
        if not service.steps:
            continue
        lines += [f"#### {NAMES[key]}", ""]
        rows = []
        for round_no, steps in enumerate(service.steps, 1):
            for st in sorted(steps, key=lambda x: x.offered):
                rows.append(
                    (
                        round_no,
                        fmt_rps(st.offered),
                        fmt_rps(st.achieved),
                        fmt_ms(st.p50),
                        fmt_ms(st.p99),
                        f"{st.slow_share * 100:.1f} %",
                        st.non_200,
                        st.resets,
                        f"{st.cpu_s / max(st.elapsed_s, 1e-9):.2f}",
                        st.throttled,
                        f"{st.machine_busy:.2f}",
                        fmt_ms(st.lag_ms),
                        "yes" if st.passes else f"no ({st.why()})",
                    )
                )
        lines += md_table(
            "round | offered /s | answered 200 /s | p50 ms | p99 ms | > 1 s | not 200 | reconnects | CPUs used "
            "| throttled periods | machine CPUs busy | driver late p99 ms | within Meta's limits",
            "rrrrrrrrrrrrl",
            rows,
        )
        lines.append("")
    return lines


def targets(result: Result, args: argparse.Namespace) -> list[TargetCheck]:
    ours = result.services.get("ours")
    if ours is None:
        return []
    checks = []
    rate = median(ours.sustained)
    rounds = ", ".join(fmt_rps(v) for v in ours.sustained)
    checks.append(
        TargetCheck(
            "at 0.5 CPU / 512 MB, sustained deliveries/s within Meta's limits "
            f"≥ the analysis' {ANALYSIS_PEAK_PER_S:g}/s peak",
            f"{fmt_rps(rate)} /s (rounds {rounds})",
            bool(rate and rate >= ANALYSIS_PEAK_PER_S),
        )
    )
    step = ours.best_step()
    checks.append(
        TargetCheck(
            f"at 0.5 CPU / 512 MB, ≥ {TARGET_DELIVERIES_PER_S:g} deliveries/s with p99 ≤ 1 s and only 200s (issue 14)",
            f"{fmt_rps(rate)} /s" + (f", p99 {fmt_ms(step.p99)} ms" if step else ""),
            bool(rate and rate >= TARGET_DELIVERIES_PER_S and step and step.p99 <= SLOW_MS),
        )
    )
    per_agent = ours.idle_per_agent(args.sessions)
    if per_agent is not None:
        checks.append(
            TargetCheck(
                f"an open, idle inbox costs ≤ {TARGET_IDLE_MS:g} ms of server CPU per second (issue 14)",
                f"{fmt_ms(per_agent)} ms/s per agent ({args.sessions} Chromium sessions); "
                + _fill(_agents(ours, args.sessions)),
                per_agent <= TARGET_IDLE_MS,
            )
        )
    checks.append(
        TargetCheck(
            "at 512 MB, no memory limit hit and no OOM kill during the run",
            f"peak {fmt_mb(ours.memory.get('max_usage', 0) / MB)} (cgroup), failcnt {ours.memory.get('failcnt', 0)}, "
            f"OOM kills {ours.memory.get('oom_kill', 0)}",
            ours.memory.get("failcnt", 0) == 0 and ours.memory.get("oom_kill", 0) == 0,
        )
    )
    checks.append(
        TargetCheck(
            "exactly one stored row per distinct message after every ingest step",
            f"{sum(len(steps) for s in result.services.values() for steps in s.steps)} steps checked",
            True,  # check_stored raises otherwise
        )
    )
    return checks


def report(result: Result, args: argparse.Namespace) -> tuple[list[str], list[TargetCheck]]:
    checks = targets(result, args)
    ours = result.services.get("ours")
    per_round = []
    for key, service in result.services.items():
        parts = []
        if service.sustained:
            parts.append("sustained deliveries/s " + ", ".join(fmt_rps(v) for v in service.sustained))
        if service.list_rps:
            parts.append("list req/s " + ", ".join(fmt_rps(v) for v in service.list_rps))
        if service.idle_ms:
            answers = ", ".join(f"{n} × {status}" for status, n in sorted(service.idle_statuses.items()))
            parts.append(
                "idle ms CPU/s alone "
                + ", ".join(fmt_ms(v) for v in service.idle_base_ms)
                + f", with {args.sessions} sessions "
                + ", ".join(fmt_ms(v) for v in service.idle_ms)
                + " (fragment and stream requests/s "
                + ", ".join(f"{v:.1f}" for v in service.idle_polls)
                + f"; the browsers' answers: {answers})"
            )
        per_round.append(f"- {NAMES[key]}: " + "; ".join(parts))
    settings = "; ".join(
        f"{NAMES[k]}: " + ", ".join(f"{name}={value}" for name, value in v.items()) for k, v in result.settings.items()
    )
    throttling = "; ".join(
        f"{NAMES[k]}: {s.cpu_stat.get('nr_throttled', 0):,} of {s.cpu_stat.get('nr_periods', 0):,} periods "
        f"throttled ({s.cpu_stat.get('throttled_time', 0) / 1e9:.0f} s)"
        for k, s in result.services.items()
        if s.cgroup.cpu_quota_us
    )
    restarts = "; ".join(f"{NAMES[k]}: {w[1]}" for k, w in result.workers.items())
    answer = ""
    if ours is not None:
        rate = median(ours.sustained)
        per_agent = ours.idle_per_agent(args.sessions)
        agents = _agents(ours, args.sessions)
        answer = (
            f"Does a 0.5 CPU / 512 MB service carry the analysis' load? Webhooks: {fmt_rps(rate)} deliveries/s "
            "within Meta's limits against peaks of 5–10/s "
            f"({fmt_rps((rate or 0) / ANALYSIS_PEAK_PER_S)}× the 10/s peak). "
            f"Agents: each idle inbox costs {fmt_ms(per_agent)} ms of CPU a second, so "
            f"{_fill(agents)}; the analysis' {ANALYSIS_USERS} take "
            f"{((per_agent or 0) * ANALYSIS_USERS) / 5:.1f} % of it. Memory: peak "
            f"{fmt_mb(ours.memory.get('max_usage', 0) / MB)} of the 512 MB (cgroup, page cache included)."
        )
    body = [
        "## Capacity at Render's size (issue 14)",
        "",
        "The service at the size of Render's starter plan — gunicorn (gunicorn.conf.py, Render's GUNICORN_CMD_ARGS, "
        "2 gthread workers × 4 request threads and 10 threads for live streams, the jobs worker inside) "
        "with its whole process tree in cgroup v1 groups "
        "of 0.5 CPU (`cpu.cfs_quota_us` 50000 of `cpu.cfs_period_us` 100000) and 512 MB (`memory.limit_in_bytes`), "
        "PostgreSQL outside — beside the baselines under the same limits (the minimal webhook handler and the "
        "analysis' proposed list query) and beside itself unconfined, in one run on the same data.",
        "",
        *run_facts(args.command_line, result.elapsed_s, args.revision, result.load_start, result.load_end),
        f"- `uptime` at start: `{result.uptime_start}`; at end: `{result.uptime_end}` — a machine shared with "
        "other sessions running tests: the unconfined column competes with them for the 2 CPUs, the confined ones "
        "much less (0.5 CPU is a quarter of the machine). To be re-run on a quiet machine.",
        f"- Data: the analysis' scale, 500 conversations × 10 messages ({result.setup_note}).",
        f"- Every figure is the median of {args.rounds} rounds (per-round figures below).",
        "",
        answer,
        "",
        "### Capacity",
        "",
        *capacity_table(result, args),
        "",
        "Sustained deliveries/s: the constant-rate driver offers a rate for "
        f"{args.step_seconds:g} s (1 message per delivery, 10 % redeliveries, up to {args.connections} "
        "connections); latency counts from each delivery's scheduled time (or when the driver handed it on, "
        "if the driver itself ran late: its lateness is in the curve), so a server that falls behind "
        "shows it. p50 / p99 and CPU per delivery are those of the passing step at that rate. List: wrk, "
        f"{args.list_seconds:g} s per round, page 1 (50 of 500 conversations); the baseline answers the "
        "analysis' proposed query without authentication, limiter, logs or metrics. Idle agents: the group's "
        f"`cpuacct.usage` over {args.idle_seconds:g} s windows, first with no browser, then with "
        f"{args.sessions} Chromium sessions (one context each, logged in, a conversation open: the live stream open "
        "and the 30 s safety-net polls); (with − without) ÷ sessions. Idle agents that fill 0.5 CPU: "
        "(500 ms/s − the service alone) ÷ the cost of one. Where the curve below shows a failing step with "
        "the group using well under 0.5 CPU while the machine's CPUs are all busy, the machine (other "
        "sessions, PostgreSQL, the driver), not the quota, set the limit: the row '0.5 CPU would allow' "
        "is then the better guide to Render's size."
        + (f" {result.idle_note[0].upper() + result.idle_note[1:]}." if result.idle_note else ""),
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### The rate curve (every step of every round)",
        "",
        *curve_lines(result),
        "### Set-up",
        "",
        *[f"- {NAMES[k]}: `{c}`" for k, c in result.commands.items()],
        f"- Groups (read back): {settings}.",
        '- Each service starts through `/bin/sh -c \'for procs in $CAPACITY_CGROUP_PROCS; do echo $$ > "$procs"; '
        "done; exec \"$@\"' …`: the shell moves itself into the groups' `cgroup.procs` and execs gunicorn, whose "
        "master forks the workers and starts the jobs worker inside them.",
        "- Measured only once each service was at rest (its group under "
        f"{SETTLE_CPU:g} CPU over {SETTLE_WINDOW_SECONDS:g} s: the jobs worker has imported the app), "
        + "; ".join(f"{NAMES[k]} after {s.settled_s:.1f} s" for k, s in result.services.items())
        + ".",
        f"- CPU throttling over the run: {throttling}.",
        f"- Worker restarts (max_requests {MAX_REQUESTS_TEXT}): {restarts}.",
        "",
        "### Per-round figures",
        "",
        *per_round,
    ]
    return body, checks


def skipped_section(reason: str, args: argparse.Namespace) -> list[str]:
    return [
        "## Capacity at Render's size (issue 14)",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: `{args.command_line}`",
        "",
        skip_line(reason),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    rounds = int(os.environ.get("CAPACITY_ROUNDS", "3"))
    parser.add_argument("--rounds", type=int, default=rounds, help=f"rounds; figures are medians (default {rounds})")
    parser.add_argument("--step-seconds", type=float, default=4.0, help="seconds of each offered webhook rate")
    parser.add_argument("--start-rate", type=float, default=40.0, help="first offered deliveries/s")
    parser.add_argument("--max-rate", type=float, default=1500.0, help="highest deliveries/s offered")
    parser.add_argument("--connections", type=int, default=32, help="the driver's most connections at once")
    parser.add_argument("--timeout", type=float, default=10.0, help="a delivery's timeout, seconds")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between steps")
    parser.add_argument("--list-seconds", type=float, default=5.0, help="seconds of each list run")
    parser.add_argument("--list-connections", type=int, default=8, help="wrk connections for the list")
    parser.add_argument("--sessions", type=int, default=3, help="idle Chromium sessions (0: skip)")
    parser.add_argument("--idle-seconds", type=float, default=8.0, help="seconds of each idle CPU window")
    parser.add_argument("--services", default=",".join(KEYS), help="comma-separated: ours, baseline, free (unconfined)")
    parser.add_argument("--phases", default="list,idle,ingest", help="comma-separated: list, idle, ingest")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench database again")
    parser.add_argument("--keep-database", action="store_true", help="keep the copy the run wrote to")
    args = parser.parse_args(argv)
    args.services = [k.strip() for k in args.services.split(",") if k.strip()]
    if not args.services or any(k not in KEYS for k in args.services):
        parser.error(f"--services takes {', '.join(KEYS)}")
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not args.phases <= {"list", "idle", "ingest"}:
        parser.error("--phases takes list, idle, ingest")
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.capacity_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    apply_bench_env()
    args.revision = code_revision()
    reason = cgroup_unavailable(Path("/proc/mounts").read_text(), os.geteuid(), lambda p: os.access(p, os.W_OK))
    if reason is None:
        from bench.ingest_benchmark import ensure_wrk

        ensure_wrk()
    server = BenchServer()
    if reason is not None:
        sys.stdout.write(skip_line(reason) + "\n")
        publish("capacity", skipped_section(reason, args), [], {}, args.revision, server)
        return 0
    remove_stale_groups()
    result = run(server, args)
    body, checks = report(result, args)
    publish("capacity", body, checks, result.memory_stats, args.revision, server)
    sys.stdout.write("\n".join(capacity_table(result, args)) + "\n\n")
    sys.stdout.write("\n".join(c.line() for c in checks) + "\n\n")
    sys.stdout.write(f"Wrote the capacity section of bench/RESULTS.md in {result.elapsed_s / 60:.1f} min.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
