"""A wrong password costs the same whether the e-mail belongs to an agent or not.

Otherwise the time a failed login takes tells an attacker which addresses have accounts
(~125 ms against ~10 ms before the fix). Both paths are timed in the same run, interleaved,
and compared by their medians: the machine's speed cancels out.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from app.services import agents as agent_service

TRIES = 7


def _timed(attempt: Callable[[], object]) -> float:
    started = time.perf_counter()
    assert attempt() is None  # every one of them is a failed login
    return time.perf_counter() - started


def _interleaved_medians(*attempts: Callable[[], object]) -> list[float]:
    samples: list[list[float]] = [[] for _ in attempts]
    for attempt in attempts:  # warm up: the dummy hash is computed once, on first use
        attempt()
    for _ in range(TRIES):
        for index, attempt in enumerate(attempts):
            samples[index].append(_timed(attempt))
    return [statistics.median(s) for s in samples]


def test_unknown_and_known_emails_take_the_same_time_to_fail(agent):
    known, unknown = _interleaved_medians(
        lambda: agent_service.authenticate(agent.email, "not the password"),
        lambda: agent_service.authenticate("nobody@example.com", "not the password"),
    )
    assert 0.5 <= unknown / known <= 2, f"known e-mail {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"


def test_an_inactive_agent_fails_in_the_same_time_as_an_active_one(agent, other_agent):
    agent_service.set_active(other_agent, False)
    active, inactive = _interleaved_medians(
        lambda: agent_service.authenticate(agent.email, "not the password"),
        lambda: agent_service.authenticate(other_agent.email, "correct horse battery 2"),
    )
    assert 0.5 <= inactive / active <= 2, f"active {active * 1000:.1f} ms, inactive {inactive * 1000:.1f} ms"


def test_the_right_password_still_logs_in_and_unknown_or_inactive_never_do(agent, other_agent):
    assert agent_service.authenticate("ANA@example.com", "correct horse battery") == agent
    assert agent_service.authenticate("nobody@example.com", "correct horse battery") is None
    agent_service.set_active(other_agent, False)
    assert agent_service.authenticate(other_agent.email, "correct horse battery 2") is None
