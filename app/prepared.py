"""Server-side prepared statements for the hot statements: the webhook's and the list's.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it each time. For the
statements of a customer's text (app/services/ingest.py: `RECEIVE`, and the message's own,
app/services/summaries.py `store_message`) planning costs PostgreSQL more than running them
(EXPLAIN ANALYZE at the analysis' scale: 0.19 and 0.35 ms of planning against 0.07 and 0.15 ms of
execution), and on Render the database has a CPU budget of its own. psycopg2 has no prepared
statements, so a statement marked with `PREPARED` (an execution option) is sent as PostgreSQL's
own `PREPARE name AS …` once per connection and then as `EXECUTE name (…)` with the same
parameters. The swap happens at the cursor (an engine event), after SQLAlchemy has compiled the
statement and processed its parameters as for any other: results, types and errors are as before.

A prepared statement lives as long as its connection and outlives the transaction that prepared
it, rolled back or not; which ones a connection holds is kept in the pool's record of that
connection (read from `pg_prepared_statements` at its first use), so a new or replaced
connection prepares them again. When PostgreSQL can no longer run one — a migration changed the
type of a column it returns ("cached plan must not change result type") or the connection no
longer holds it — the error forgets it on that connection, so the next use prepares it afresh,
and the webhook runs the delivery again (`STALE_SQLSTATES`, app/services/inbound.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

# `statement.execution_options(**PREPARED)` marks a statement to run prepared.
PREPARED = {"server_prepared": True}
# invalid_sql_statement_name (no such prepared statement), feature_not_supported (the cached
# plan must not change its result type), duplicate_prepared_statement (held, though this process
# did not know it): the work is retried, after what the connection holds is read again or the
# outdated statement is deallocated.
STALE_SQLSTATES = ("26000", "0A000", "42P05")

_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s")
_HELD = "prepared_statements"  # key in the pool record's info: the names this connection holds
_STALE = "stale_prepared_statements"  # names to DEALLOCATE before they are prepared again


@dataclass(frozen=True)
class _Plan:
    name: str
    prepare: str
    execute: str


_plans: dict[str, _Plan] = {}  # by the compiled SQL (psycopg2's `%(name)s` placeholders)


def plan_for(sql: str, compiled: SQLCompiler) -> _Plan:
    """The PREPARE and EXECUTE of one compiled statement: each distinct placeholder becomes a
    `$n` of the PREPARE, declared with its bound parameter's type (PostgreSQL cannot infer one
    everywhere, e.g. in `jsonb_build_object`; `unknown` where SQLAlchemy has none either), and
    the EXECUTE passes the same named parameters in that order."""
    plan = _plans.get(sql)
    if plan is None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        # The PREPARE is sent without parameters, so psycopg2 leaves it as it is: `%%` is `%`.
        body = _PLACEHOLDER.sub(number, sql).replace("%%", "%")
        name = "hot_" + hashlib.sha256(sql.encode()).hexdigest()[:16]
        binds = {bind_name: bind for bind, bind_name in compiled.bind_names.items()}
        types = [_sql_type(compiled, binds.get(n)) for n in names]
        declared = f" ({', '.join(types)})" if names else ""
        arguments = f" ({', '.join(f'%({n})s' for n in names)})" if names else ""
        prepare = f"PREPARE {name}{declared} AS {body}"
        plan = _plans.setdefault(sql, _Plan(name, prepare, f"EXECUTE {name}{arguments}"))
    return plan


def _sql_type(compiled: SQLCompiler, bind: BindParameter[Any] | None) -> str:
    if bind is None or bind.type._isnull:
        return "unknown"
    return compiled.dialect.type_compiler_instance.process(bind.type)


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    if executemany or context is None or not context.execution_options.get("server_prepared"):
        return statement, parameters
    if context.compiled is None:  # raw SQL (exec_driver_sql): no bound parameters to declare
        return statement, parameters
    plan = plan_for(statement, context.compiled)
    info = conn.connection.info  # the pool's record of this DBAPI connection
    held: set[str] | None = info.get(_HELD)
    if held is None:  # the first use on this connection: what it holds already, if anything
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'hot\\_%'")
        held = info[_HELD] = {row[0] for row in cursor.fetchall()}
    if plan.name not in held:
        stale: set[str] = info.setdefault(_STALE, set())
        if plan.name in stale:
            cursor.execute(f"DEALLOCATE {plan.name}")
            stale.discard(plan.name)
        cursor.execute(plan.prepare)
        held.add(plan.name)
    return plan.execute, parameters


def _handle_error(context: ExceptionContext) -> None:
    execution = context.execution_context
    if execution is None or execution.compiled is None or not execution.execution_options.get("server_prepared"):
        return
    code = getattr(context.original_exception, "pgcode", None)
    if code not in STALE_SQLSTATES or context.connection is None or context.is_disconnect:
        return
    info = context.connection.connection.info
    if code != "0A000":  # gone, or held unbeknown: the next use reads what the connection holds
        info.pop(_HELD, None)
        return
    # Still held by the connection, with a plan it can no longer use: deallocated, then prepared.
    plan = plan_for(execution.statement, cast(SQLCompiler, execution.compiled))
    info.setdefault(_HELD, set()).discard(plan.name)
    info.setdefault(_STALE, set()).add(plan.name)


def init_prepared(engine: Engine) -> None:
    """Run the statements marked `PREPARED` as prepared statements on `engine`'s connections
    (psycopg2's; psycopg 3 prepares repeated statements by itself)."""
    if engine.dialect.driver != "psycopg2":
        return
    if not event.contains(engine, "before_cursor_execute", _before_cursor_execute):
        event.listen(engine, "before_cursor_execute", _before_cursor_execute, retval=True)
        event.listen(engine, "handle_error", _handle_error)
