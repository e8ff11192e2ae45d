"""`make bench`: every benchmark in turn, each rewriting its own section of bench/RESULTS.md.

    .venv/bin/python -m bench.run_all [--only ingest,list,scale,media_ingest,media_serve,search,reports,capacity,idle]

Each runs as its own process (`python -m bench.<name>_benchmark` with its defaults), printing its
progress; a failing benchmark stops the run with its exit status. About 40–45 minutes on a
2-core machine once the databases are seeded (the first run seeds them: a few minutes more);
the two media benchmarks (issue 11) take about 3 and 2 minutes of that, the capacity benchmark
at Render's size (issue 14; cgroups v1 as root, else skipped with one line) 8–9 minutes, the idle inbox one
(issue 14: real Chromium sessions, this code and main's) about 8.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("list", "ingest", "scale", "media_ingest", "media_serve", "search", "reports", "capacity", "idle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated: " + ", ".join(ORDER))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        parser.error(f"--only takes {', '.join(ORDER)}; got {args.only!r}")
    started = time.perf_counter()
    for number, name in enumerate(names, 1):
        elapsed = (time.perf_counter() - started) / 60
        sys.stdout.write(f"\n=== [{number}/{len(names)}] {name} benchmark ({elapsed:.1f} min so far) ===\n")
        sys.stdout.flush()
        status = subprocess.run([sys.executable, "-m", f"bench.{name}_benchmark"], cwd=ROOT, check=False).returncode
        if status != 0:
            sys.stdout.write(f"\n{name} benchmark failed (exit status {status}); bench/RESULTS.md has the others.\n")
            return status
    total = (time.perf_counter() - started) / 60
    sys.stdout.write(f"\nAll benchmarks done in {total:.1f} min; results in bench/RESULTS.md.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
