"""The capacity benchmark's pure helpers (bench/capacity_benchmark.py): reading cgroup v1 and
/proc files, Meta's limits on a step of deliveries, and the line printed where cgroups are not
writable. No timing here: the benchmark itself measures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.capacity_benchmark import (
    Step,
    cgroup_unavailable,
    parse_cgroup_mounts,
    parse_keyed,
    parse_proc_cgroup,
    parse_smaps_rollup,
    search,
    skip_line,
    step_passes,
)

SEPARATE = """tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
COMOUNTED = """cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
"""
V2_ONLY = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"


def test_cgroup_v1_mounts_are_found_whether_cpu_and_cpuacct_are_mounted_apart_or_together() -> None:
    assert parse_cgroup_mounts(SEPARATE) == {
        "cpu": Path("/sys/fs/cgroup/cpu"),
        "cpuacct": Path("/sys/fs/cgroup/cpuacct"),
        "memory": Path("/sys/fs/cgroup/memory"),
    }
    both = parse_cgroup_mounts(COMOUNTED)
    assert both["cpu"] == both["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert parse_cgroup_mounts(V2_ONLY) == {}


def test_the_group_a_process_is_in_is_read_per_controller() -> None:
    content = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n"
    assert parse_proc_cgroup(content) == {"name=systemd": "/", "memory": "/process_api/abc", "cpu": "/", "cpuacct": "/"}


def test_keyed_files_and_smaps_rollup_are_parsed_into_integers() -> None:
    assert parse_keyed("nr_periods 120\nnr_throttled 7\nthrottled_time 81000000\n") == {
        "nr_periods": 120,
        "nr_throttled": 7,
        "throttled_time": 81000000,
    }
    rollup = "55d0c0000000-7ffd5ad2b000 ---p 00000000 00:00 0 [rollup]\nRss:              102400 kB\nPss:  51200 kB\n"
    assert parse_smaps_rollup(rollup) == {"Rss": 102400 * 1024, "Pss": 51200 * 1024}


def test_where_cgroups_cannot_be_made_the_reason_is_one_clear_line() -> None:
    assert cgroup_unavailable(SEPARATE, 0, lambda path: True) is None
    not_root = cgroup_unavailable(SEPARATE, 1000, lambda path: True)
    assert not_root is not None and "root" in not_root
    v2 = cgroup_unavailable(V2_ONLY, 0, lambda path: True)
    assert v2 is not None and "cpu, cpuacct, memory" in v2
    read_only = cgroup_unavailable(SEPARATE, 0, lambda path: path.name != "memory")
    assert read_only == "/sys/fs/cgroup/memory is not writable"
    line = skip_line(read_only)
    assert line.startswith("Capacity benchmark skipped: /sys/fs/cgroup/memory is not writable")
    assert "\n" not in line


def test_a_step_is_within_metas_limits_only_with_every_answer_200_a_fast_median_and_few_slow() -> None:
    fast = [20.0] * 99 + [1500.0]  # 1 % over 1 s: not under 1 %
    assert not step_passes(fast, 0)
    assert step_passes([20.0] * 199 + [1500.0], 0)  # 0.5 % over 1 s
    assert not step_passes([20.0] * 200, 1)  # one answer other than 200
    assert not step_passes([300.0] * 60 + [10.0] * 40, 0)  # median 300 ms
    assert step_passes([250.0] * 51 + [10.0] * 49, 0)  # median exactly 250 ms
    assert not step_passes([], 0)
    # Falling behind: fast at first, the last quarter over 250 ms at the median — a longer step
    # would fail, so the rate is not sustained.
    assert not step_passes([20.0] * 75 + [600.0] * 25, 0)
    assert step_passes([20.0] * 75 + [600.0] * 12 + [20.0] * 13, 0)


def _step_at(threshold: float) -> Callable[[float], Step]:
    """A stand-in for one measured step: within the limits up to `threshold` deliveries/s."""

    def measure(rate: float) -> Step:
        latency = 10.0 if rate <= threshold else 400.0
        return Step(rate, 100, [latency] * 100, {200: 100}, 0, 1.0)

    return measure


def test_the_rate_search_climbs_to_the_first_failure_then_bisects_to_within_ten_percent() -> None:
    best, steps = search(_step_at(130), 40, (1.5,), 2, 1500)
    assert [round(s.offered) for s in steps] == [40, 60, 90, 135, 110, 122]
    assert 120 < best <= 130
    # Near an earlier figure: ×1.1 three times, then ×1.3, then bisected while the gap is over 10 %.
    best, steps = search(_step_at(300), 100, (1.1, 1.1, 1.1, 1.3), 2, 1500)
    assert [round(s.offered) for s in steps] == [100, 110, 121, 133, 173, 225, 292, 380, 333, 312]
    assert best == steps[6].offered
    # Failing from the start: down ÷1.1 until a rate passes; nothing passing at all gives 0.
    best, steps = search(_step_at(80), 100, (1.1,), 0, 1500)
    assert 75 < best <= 80 and not steps[0].passes
    assert search(_step_at(0), 100, (1.5,), 2, 1500)[0] == 0.0
