"""What the browser notifications' feed adds to each render of the polled conversation list.

    .venv/bin/python -m bench.notifications_benchmark [--conversations 50000] [--messages 20] [--rounds 300]

The inbox's list fragment carries the feed (app/services/notifications.py: two statements) so
notifications need no request of their own. This measures, in-process on a seeded database
(1 M messages in 50,000 conversations by default; `demo.seed` leaves every fourth conversation
with unread customer messages — a backlog of 12,500, far beyond a real inbox's, so a worst
case), the median time of the feed for both scopes beside the list's own statements
(`list_conversations`, page 1 of 25, as the page asks for it), and prints the plans. The
database is this benchmark's own (`inbox_bench_notify_…`), reused while the migrations and the
seed code are unchanged; BENCH_DATABASE_URL picks the server (default: the embedded one).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select, text

from app.extensions import db
from app.models import Agent, Conversation, Mention, Message
from app.services.conversations import ConversationFilters, list_conversations
from app.services.notifications import notification_feed
from bench.common import (
    BENCH_AGENT,
    BenchServer,
    Scale,
    apply_bench_env,
    log,
    prepare_database,
    setup_app,
    setup_logging,
)


@dataclass(frozen=True)
class NotifyScale(Scale):
    @property
    def database(self) -> str:
        return f"inbox_bench_notify_{self.conversations}x{self.messages_per_conversation}"


def _median_ms(run: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """Median wall-clock and median CPU time of this process (the app's side, SQL excluded), in ms."""
    run()  # warm: plans cached, pages in memory
    wall, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--force", action="store_true", help="seed again even if the database matches")
    args = parser.parse_args()
    apply_bench_env()
    setup_logging()
    scale = NotifyScale("notify", args.conversations, args.messages)
    url, note = prepare_database(BenchServer(), scale, args.force)
    log.info(note)

    app = setup_app(url)
    with app.app_context():
        agent_id = db.session.execute(select(Agent.id).where(Agent.email == BENCH_AGENT)).scalar_one()
        if not db.session.execute(select(func.count()).select_from(Mention)).scalar_one():
            # Some history of mentions for the agent: 1,000 notes, the newest 20 unread.
            notes = db.session.execute(
                select(Message.id, Message.conversation_id).where(Message.direction == "out").limit(1000)
            ).all()
            db.session.execute(
                Mention.__table__.insert(),
                [{"agent_id": agent_id, "message_id": m.id, "conversation_id": m.conversation_id} for m in notes],
            )
            db.session.execute(
                text("UPDATE mentions SET read_at = now() WHERE id <= (SELECT max(id) - 20 FROM mentions)")
            )
            db.session.commit()
        unread = db.session.execute(
            select(func.count()).select_from(Conversation).where(Conversation.unread_count > 0)
        ).scalar_one()
        filters = ConversationFilters(statuses=("open",), assignee="all")
        results = {
            "list (its own 3 statements)": _median_ms(
                lambda: list_conversations(db.session, agent_id=agent_id, filters=filters, page=1, per_page=25),
                args.rounds,
            ),
            "feed, scope mine_and_unassigned": _median_ms(
                lambda: notification_feed(db.session, agent_id, "mine_and_unassigned"), args.rounds
            ),
            "feed, scope all": _median_ms(lambda: notification_feed(db.session, agent_id, "all"), args.rounds),
        }
        feed = notification_feed(db.session, agent_id, "mine_and_unassigned")
        lines = [
            f"{scale.messages:,} messages, {scale.conversations:,} conversations, {unread:,} with unread messages;",
            f"feed: {feed.unread_messages:,} unread in scope, {feed.unread_mentions} unread mentions",
            "| what | median wall ms | median app CPU ms |",
            "|---|---|---|",
            *(f"| {name} | {wall:.2f} | {cpu:.2f} |" for name, (wall, cpu) in results.items()),
        ]
        captured: list[str] = []

        def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            captured.append(cursor.mogrify(statement, parameters).decode())

        event.listen(db.engine, "before_cursor_execute", capture)
        notification_feed(db.session, agent_id, "mine_and_unassigned")
        event.remove(db.engine, "before_cursor_execute", capture)
        for statement in captured:
            plan = db.session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + statement)).scalars().all()
            lines += ["", *plan]
        log.info("\n%s", "\n".join(lines))
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
