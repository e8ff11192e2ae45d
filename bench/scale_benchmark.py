"""Scale curve (issue 6, item 5): the conversation list and webhook ingest at 10 k, 100 k and 1 M
messages, each beside its baseline, to show what grows with the data and what does not.

    .venv/bin/python -m bench.scale_benchmark [--scales 10k,100k,1m,1m-deep] [--rounds 3]

The measuring is the other benchmarks' own, imported: `list_benchmark.run_scale` (seeded
databases reused, gunicorn as production runs it, p50/p99 of sequential requests and req/s, SQL
per request) with only this project and the analysis' proposed query, and
`ingest_benchmark.measure_ingest` (wrk with pre-signed bodies, 10 % redeliveries, rows counted
after every run) with one message per delivery, on a throw-away copy of the same database.

Scales: 20 messages per conversation, the conversations growing (500, 5,000, 50,000: the way
an inbox grows), and a fourth point with the same 1 M messages in only 500 conversations
(2,000 each), which tells the cost of messages apart from the cost of conversations.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import ingest_benchmark, list_benchmark
from bench.common import (
    BenchServer,
    Scale,
    TargetCheck,
    apply_bench_env,
    code_revision,
    fmt_mb,
    fmt_ms,
    fmt_rps,
    load_average,
    log,
    md_table,
    memory_targets,
    publish,
    ratio,
    rounds_line,
    run_facts,
    setup_logging,
)


@dataclass(frozen=True)
class CurvePoint:
    scale: Scale
    ingest: bool  # also measure ingest at this point


POINTS = {
    "10k": CurvePoint(Scale("10k", 500, 20), True),
    "100k": CurvePoint(Scale("100k", 5_000, 20), True),
    "1m": CurvePoint(Scale("1m", 50_000, 20), True),  # the list benchmark's "large" database
    "1m-deep": CurvePoint(Scale("1m-deep", 500, 2_000), False),
}
COPY_DATABASE = "inbox_bench_scale_ingest"
FLAT_FACTOR = 1.5  # "stays flat": at 1 M messages, p50 within this factor of the 10 k one


@dataclass
class PointResult:
    point: CurvePoint
    listing: list_benchmark.ScaleResult
    ingest: dict[tuple[str, int, str], ingest_benchmark.Measure] | None
    memory: dict[str, dict[str, Any]]
    elapsed_s: float


def run_point(server: BenchServer, point: CurvePoint, args: argparse.Namespace) -> PointResult:
    started = time.perf_counter()
    scale = point.scale
    log.info("scale %s: %s — list", scale.name, scale.label)
    listing = list_benchmark.run_scale(server, scale, args.list_args, light=True)
    memory = {f"{k} — {scale.name}": v for k, v in listing.memory.items()}
    measures = None
    if point.ingest:
        log.info("scale %s: ingest, on a copy of %s", scale.name, scale.database)
        url = server.copy_database(scale.database, COPY_DATABASE)
        try:
            measures, _counts, _method, gunicorns = ingest_benchmark.measure_ingest(
                server, url, args.ingest_args, (1,), scale.name.replace("-", ""), single=False, statements=False
            )
        finally:
            server.drop_database(COPY_DATABASE)
        for key, g in gunicorns.items():
            if g.memory is not None:
                memory[f"{ingest_benchmark.NAMES[key]} (ingest) — {scale.name}"] = g.memory.as_dict()
    return PointResult(point, listing, measures, memory, time.perf_counter() - started)


def list_table(results: list[PointResult]) -> list[str]:
    base = results[0]
    rows = []
    for r in results:
        scale = r.point.scale
        for which, page in (("1", 1), ("last", scale.pages)):
            label = list_benchmark.page_label(page, scale)
            ours = r.listing.cells[("ours", label)]
            proposed = r.listing.cells[("proposed", label)]
            base_label = list_benchmark.page_label(1 if which == "1" else base.point.scale.pages, base.point.scale)
            base_p50 = base.listing.cells[("ours", base_label)].median("p50")
            rows.append(
                [
                    scale.name,
                    f"{scale.conversations:,} × {scale.messages_per_conversation:,} = {scale.messages:,}",
                    label,
                    fmt_ms(ours.median("p50")),
                    fmt_ms(ours.median("p99")),
                    fmt_rps(ours.median("rps")),
                    ratio(ours.median("p50"), base_p50),
                    fmt_ms(proposed.median("p50")),
                    fmt_rps(proposed.median("rps")),
                    ratio(proposed.median("p50"), ours.median("p50")),
                    ours.statements.cell() if ours.statements else "—",
                ]
            )
    header = (
        "scale | conversations × messages | page | this project p50 ms | p99 ms | req/s "
        f"| p50 ÷ {base.point.scale.name} | proposed query p50 ms | req/s | ours faster by | SQL / request (ours)"
    )
    return md_table(header, "lllrrrrrrrl", rows)


def ingest_table(results: list[PointResult]) -> list[str]:
    rows = []
    for r in results:
        if r.ingest is None:
            continue
        ours = r.ingest[("ours", 1, "load")]
        base = r.ingest[("baseline", 1, "load")]
        cpu = (ours.med("cpu_server_ms") or 0) + (ours.med("cpu_pg_ms") or 0)
        base_cpu = (base.med("cpu_server_ms") or 0) + (base.med("cpu_pg_ms") or 0)
        rows.append(
            [
                r.point.scale.name,
                f"{r.point.scale.messages:,}",
                fmt_rps(ours.med("rate")),
                f"{fmt_ms(ours.med('p50'))} / {fmt_ms(ours.med('p99'))}",
                fmt_rps(base.med("rate")),
                ratio(ours.med("rate"), base.med("rate")),
                f"{fmt_ms(cpu)} (minimal handler {fmt_ms(base_cpu)})",
                "yes" if all(c.exact for m in (ours, base) for c in m.checks) else "**no**",
            ]
        )
    header = (
        "scale | messages before the run | this project deliveries/s | p50 / p99 ms under load "
        "| minimal handler deliveries/s | ratio | CPU ms / delivery (gunicorn + PostgreSQL) | rows exact"
    )
    return md_table(header, "lrrlrrll", rows)


def targets(results: list[PointResult]) -> list[TargetCheck]:
    checks = []
    by_name = {r.point.scale.name: r for r in results}
    first, grown = by_name.get("10k"), by_name.get("1m")
    if first and grown:
        for which in ("1", "last"):
            a = first.listing.cells[
                ("ours", list_benchmark.page_label(1 if which == "1" else first.point.scale.pages, first.point.scale))
            ].median("p50")
            b = grown.listing.cells[
                ("ours", list_benchmark.page_label(1 if which == "1" else grown.point.scale.pages, grown.point.scale))
            ].median("p50")
            checks.append(
                TargetCheck(
                    f"list flat from 10 k to 1 M messages, page {which} (p50 within {FLAT_FACTOR:g}×)",
                    f"{fmt_ms(a)} → {fmt_ms(b)} ms ({ratio(b, a)})",
                    bool(a and b and b / a <= FLAT_FACTOR),
                )
            )
    deep = by_name.get("1m-deep")
    if first and deep:
        for which in ("1", "last"):
            a = first.listing.cells[
                ("ours", list_benchmark.page_label(1 if which == "1" else first.point.scale.pages, first.point.scale))
            ].median("p50")
            b = deep.listing.cells[
                ("ours", list_benchmark.page_label(1 if which == "1" else deep.point.scale.pages, deep.point.scale))
            ].median("p50")
            checks.append(
                TargetCheck(
                    f"list flat from 10 k to 1 M messages in the same 500 conversations, page {which} "
                    f"(p50 within {FLAT_FACTOR:g}×)",
                    f"{fmt_ms(a)} → {fmt_ms(b)} ms ({ratio(b, a)})",
                    bool(a and b and b / a <= FLAT_FACTOR),
                )
            )
    runs = [c for r in results if r.ingest for m in r.ingest.values() for c in m.checks]
    checks.append(
        TargetCheck(
            "exactly one stored row per distinct message after every ingest run",
            f"{len(runs)} runs checked",
            all(c.exact for c in runs),
        )
    )
    return checks + memory_targets(largest_by_server(results), "the scale curve")


def largest_by_server(results: list[PointResult]) -> dict[str, dict[str, Any]]:
    """For the memory summary: per server (app or baseline, list or ingest), the largest figures
    over every scale, labelled with the scale of the largest RSS sum."""
    merged: dict[str, dict[str, Any]] = {}
    for r in results:
        for key, m in r.memory.items():
            server = key.split(" — ")[0].split(" (")[0] + (" (ingest)" if "(ingest)" in key else " (list)")
            current = merged.get(server)
            if current is None:
                merged[server] = {**m, "scale": r.point.scale.name}
                continue
            for name, value in m.items():
                if isinstance(value, int | float) and name != "samples" and value > (current.get(name) or 0):
                    current[name] = value
                    if name == "peak_rss":
                        current["scale"] = r.point.scale.name
    return {f"{k}, largest at {v.pop('scale')}": v for k, v in merged.items()}


def report(results: list[PointResult], args: argparse.Namespace, total_s: float, load: str) -> tuple[list, list]:
    checks = targets(results)
    out = [
        "## Scale curve (item 5)",
        "",
        "The list (page 1 and the last page, per_page 50) and the ingest (1 message per delivery) as the data "
        "grows, each beside its baseline in the same run: the list with the analysis' proposed query, the "
        "ingest with the minimal handler. The list and ingest code is the other two benchmarks' "
        "(`list_benchmark.run_scale`, `ingest_benchmark.measure_ingest`), run with fewer rounds.",
        "",
        *run_facts(args.command_line, total_s, args.revision, load, load_average()),
        f"- Medians of {args.rounds} rounds. List: up to {args.list_args.sequential} sequential requests or "
        f"{args.list_args.budget:g} s per round and page, req/s with {args.list_args.threads} client threads for "
        f"{args.list_args.duration:g} s. Ingest: wrk, {args.ingest_args.connections} connections, "
        f"{args.ingest_args.duration:g} s per run, on a fresh copy of the scale's database.",
        "",
        "### Conversation list",
        "",
        *list_table(results),
        "",
        "### Webhook ingest",
        "",
        *ingest_table(results),
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### Set-up",
        "",
    ]
    for r in results:
        out.append(
            f"- {r.point.scale.name}: {r.point.scale.label}; {r.listing.setup_note}; measured in "
            f"{r.elapsed_s:.0f} s; list worker restarts {r.listing.workers['ours'][1]} (app), "
            f"{r.listing.workers['baselines'][1]} (baselines); memory peak (RSS sum) "
            + ", ".join(f"{k.split(' — ')[0]} {fmt_mb(v['peak_rss'])}" for k, v in r.memory.items())
            + "."
        )
    out += ["", "### Per-round figures", ""]
    for r in results:
        for (key, label), cell in r.listing.cells.items():
            out.append(rounds_line(f"{r.point.scale.name} / list / {key} / page {label}", p50=cell.p50, rps=cell.rps))
        for (key, _per, _mode), m in (r.ingest or {}).items():
            out.append(rounds_line(f"{r.point.scale.name} / ingest / {key}", rate=m.rate, p50=m.p50))
    return out, checks


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=",".join(POINTS), help="comma-separated: " + ", ".join(POINTS))
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scale; figures are medians (default 3)")
    parser.add_argument("--list-budget", type=float, default=2.0, help="seconds of sequential requests per page")
    parser.add_argument("--list-duration", type=float, default=1.5, help="seconds of each list req/s run")
    parser.add_argument("--ingest-duration", type=float, default=6.0, help="seconds of each ingest wrk run")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench databases again")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scales.split(",") if s.strip()]
    unknown = [n for n in names if n not in POINTS]
    if unknown or not names:
        parser.error(f"--scales takes {', '.join(POINTS)}; got {args.scales!r}")
    args.points = [POINTS[n] for n in names]
    args.list_args = argparse.Namespace(
        rounds=args.rounds,
        sequential=200,
        budget=args.list_budget,
        duration=args.list_duration,
        threads=4,
        old_max_seconds=0.0,
        old_timeout=600.0,
        reseed=args.reseed,
    )
    ingest_parser = argparse.ArgumentParser()
    ingest_benchmark.add_arguments(ingest_parser, rounds=args.rounds, duration=args.ingest_duration)
    args.ingest_args = ingest_parser.parse_args([])
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.scale_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    apply_bench_env()
    load = load_average()
    args.revision = code_revision()
    ingest_benchmark.ensure_wrk()
    started = time.perf_counter()
    server = BenchServer()
    results = [run_point(server, point, args) for point in args.points]
    body, checks = report(results, args, time.perf_counter() - started, load)
    publish("scale", body, checks, largest_by_server(results), args.revision, server)
    sys.stdout.write("\n".join([*list_table(results), "", *ingest_table(results), ""]) + "\n")
    sys.stdout.write("\n".join(c.line() for c in targets(results)) + "\n")
    sys.stdout.write(
        f"Wrote the scale section of bench/RESULTS.md in {(time.perf_counter() - started) / 60:.1f} min.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
