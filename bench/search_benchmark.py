"""Benchmark of GET /whatsapp/api/mensajes (full-text search) at 1 M messages, beside `ILIKE '%word%'`.

    .venv/bin/python -m bench.search_benchmark [--rounds 5]   (`python -m bench.run_all --only search`)

Its own database, `inbox_bench_search_50000x20` (reused while the migrations, the demo seed and
this file are unchanged): the demo seed (`app.services.demo.seed`, 50,000 conversations × 20
messages), whose ten repeated lines would make every word either everywhere or nowhere, then
every text rewritten set-based from a Spanish vocabulary with a Zipf-like distribution (word k
drawn with probability ∝ 1/k, and 40 % function words), a few rare words, 4 % documents with
file names, 3 % photos with captions and 1 % private notes; VACUUM FULL ANALYZE.

Measured, in rounds whose order rotates:

* p50 / p99 of the API request (gunicorn as Render runs it, an API token, page 1, 20 per page)
  for a rare word, a selective word, a common word and a very common one;
* the same searches as direct SQL (the service's two statements), beside the baseline: the
  sequential scan `text ILIKE '%word%'` (count + newest page) that a search without an index does,
  on the same data in the same run;
* what search costs at ingest: single-row INSERTs (as the webhook writes) with the stored
  generated `tsvector` column and its GIN index (migration 0007), with no search at all, and with
  the alternative, a GIN index on the expression, whose queries are timed too; and how long
  migration 0007 takes on the 1 M-message table.

Results go to the "Message search" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.common import (
    BENCH_AGENT,
    BENCH_ENV,
    GUNICORN_ENV,
    ROOT,
    BenchGunicorn,
    BenchServer,
    Scale,
    TargetCheck,
    apply_bench_env,
    autocommit,
    code_revision,
    fmt_ms,
    load_average,
    log,
    md_table,
    percentile,
    publish,
    rounds_line,
    run_facts,
    seed_key,
    sequential,
    setup_app,
    setup_logging,
)
from bench.list_benchmark import issue_token

SEARCH_PATH = "/whatsapp/api/mensajes"
PER_PAGE = 20
SCALE = Scale("1m", 50_000, 20)
DATABASE = "inbox_bench_search_50000x20"
MIGRATION = ROOT / "migrations" / "versions" / "20261202_0007_search.py"
TARGETS_MS = {"rare": 50.0, "selective": 50.0, "common": 150.0}

# Word k of WORDS is drawn with probability ∝ 1/k: the first ones are everywhere, the last rare.
WORDS = """hola gracias buenas pedido tardes envío factura precio entrega producto pago cambio tarjeta
dirección mañana hoy semana transferencia horario sábado tienda talla color modelo stock disponible
oferta descuento cupón promoción cuenta correo teléfono número cliente problema ayuda consulta reclamo
reembolso paquete seguimiento código llegó dañado roto falta caja etiqueta transporte repartidor
domicilio ciudad provincia Córdoba Rosario Mendoza Madrid Sevilla Valencia Bogotá Lima Santiago México
canción camión avión limón corazón información atención ubicación reserva cita turno mesa habitación
hotel vuelo billete pasaje asiento equipaje maleta documento contrato presupuesto cotización importe
total recibo comprobante ticket boleta nota crédito débito efectivo cuotas interés financiación plazo
vencimiento fecha hora minutos rápido urgente tarde temprano noche zapatillas camiseta pantalón vestido
chaqueta abrigo bolso mochila reloj gafas cargador cable auriculares pantalla batería funda tablet
portátil impresora tinta papel mueble silla sofá cama colchón lámpara cocina nevera lavadora horno
microondas cafetera licuadora aspiradora bicicleta casco repuesto pieza tornillo pintura madera vidrio
acero cuero algodón lana tamaño grande pequeño mediano negro blanco rojo azul verde gris marrón rosa
amarillo naranja violeta perfecto excelente genial bueno malo terrible confirmo confirmado cancelar
cancelado anular pendiente aprobado rechazado enviado recibido entregado demora retraso espera
respuesta mensaje llamada videollamada foto imagen archivo adjunto enlace página web aplicación usuario
contraseña acceso registro suscripción baja alta renovación membresía socio puntos regalo cumpleaños
navidad aniversario boda fiesta evento entrada concierto función teatro cine museo médico dentista
clínica farmacia receta análisis vacuna urgencia seguro póliza siniestro abogado trámite certificado
partida pasaporte visa residencia alquiler piso apartamento casa llave""".split()  # noqa: SIM905
FILLER = """el la los las un una de del en con por para que y o me mi te tu se lo le es está estoy son hay
muy más ya no sí pero como cuando donde""".split()  # noqa: SIM905
# One message in 2,000 gets one of these: each is in about 50 messages of the million.
RARE = "murciélago ornitorrinco cigüeña zanahoria pingüino acordeón xilófono mandolina clarinete tamboril".split()  # noqa: SIM905

SEARCHES = {
    # kind: (what is typed, what it shows)
    "rare": ("murcielago", "a rare word typed without its accent (about 50 matches)"),
    "selective": ("pasaporte", "a selective word (a few hundred matches)"),
    "common": ("pedido", "a common word (about one message in seven)"),
    "very common": ("hola", "the most common word (almost one message in two)"),
}


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _words_sql(count: str) -> str:
    n = len(WORDS)
    return f"""(SELECT string_agg(CASE WHEN random() < 0.4
                    THEN ({_array(FILLER)})[1 + floor(random() * {len(FILLER)})::int]
                    ELSE ({_array(WORDS)})[least({n}, floor(exp(random() * ln({n})))::int)] END, ' ')
               FROM generate_series(1, {count}) AS k WHERE m.id > 0)"""


VARIETY_SQL = f"""
UPDATE messages m SET
    type = CASE WHEN m.id % 100 < 4 THEN 'document' WHEN m.id % 100 < 7 THEN 'image'
                WHEN m.id % 100 = 7 THEN 'note' ELSE 'text' END,
    sender = CASE WHEN m.id % 100 = 7 THEN 'agent' ELSE m.sender END,
    direction = CASE WHEN m.id % 100 = 7 THEN 'out' ELSE m.direction END,
    status = CASE WHEN m.id % 100 = 7 THEN NULL ELSE m.status END,
    media_id = CASE WHEN m.id % 100 < 7 THEN (1000000 + m.id)::text END,
    media_mime_type = CASE WHEN m.id % 100 < 4 THEN 'application/pdf' WHEN m.id % 100 < 7 THEN 'image/jpeg' END,
    media_filename = CASE WHEN m.id % 100 < 4
        THEN ({_array(WORDS[:60])})[1 + (m.id / 100) % 60] || '_' || (m.id % 997) || '.pdf' END,
    text = CASE WHEN m.id % 100 < 4 THEN NULL ELSE
        {_words_sql("3 + (m.id % 12)")}
        || CASE WHEN random() < 0.0005 THEN ' ' || ({_array(RARE)})[1 + floor(random() * {len(RARE)})::int] ELSE '' END
    END
"""


def search_seed_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return f"{seed_key(SCALE)} search {digest}"


def prepare(server: BenchServer, force: bool) -> tuple[str, str]:
    from app.embedded_db import create_database

    url = server.url(DATABASE)
    with server.admin() as conn:
        comment = conn.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :d"), {"d": DATABASE}
        ).scalar()
    if comment == search_seed_key() and not force:
        note = f"reused the seeded database {DATABASE} (migrations, seed code and this benchmark unchanged)"
        log.info(note)
        return url, note
    log.info(
        "seeding %s into %s, then varied Spanish texts (a few minutes; later runs reuse it)", SCALE.label, DATABASE
    )
    started = time.perf_counter()
    create_database(server.admin_url, DATABASE, drop_first=True)
    from flask_migrate import upgrade

    from app.extensions import db
    from app.services import agents, demo

    app = setup_app(url)
    with app.app_context():
        upgrade()
        agents.create_agent(BENCH_AGENT, "Bench Agent", "bench-password-123", role="admin")
        demo.seed(SCALE.conversations, SCALE.messages_per_conversation)
        db.session.remove()
        db.engine.dispose()
    with autocommit(url) as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(text(VARIETY_SQL))
        conn.execute(text("VACUUM (FULL, ANALYZE) messages"))
    with server.admin() as conn:
        conn.execute(text(f'COMMENT ON DATABASE "{DATABASE}" IS :c').bindparams(c=search_seed_key()))
    note = f"seeded {DATABASE} in {time.perf_counter() - started:.0f} s (migrate, demo seed, varied texts, VACUUM FULL)"
    log.info(note)
    return url, note


# --- direct SQL: the service's statements, the column alternative, the ILIKE baseline -------------

EXPRESSION = (
    "to_tsvector('es_unaccent'::regconfig, coalesce(messages.text, '') || ' ' || "
    "translate(coalesce(messages.media_filename, ''), '._-', '   '))"
)
COLUMN = "messages.search_vector"


def _service_sql(document: str) -> tuple[str, str, str]:
    """The count, the page for few matches and the page for many, as app/services/search.py builds
    them (without the joins of the page's columns, the same for every variant)."""
    where = (
        f"{document} @@ to_tsquery('es_unaccent'::regconfig, %(q)s) "
        "AND messages.type NOT IN ('reaction', 'edit', 'revoke') AND messages.deleted_at IS NULL"
    )
    count = f"SELECT count(*) FROM (SELECT messages.id FROM messages WHERE {where} LIMIT 1000) AS counted"
    few = (
        f"WITH hits AS MATERIALIZED (SELECT messages.id FROM messages WHERE {where}) "
        f"SELECT id FROM hits ORDER BY id DESC LIMIT {PER_PAGE}"
    )
    many = f"SELECT messages.id FROM messages WHERE {where} ORDER BY messages.id DESC LIMIT {PER_PAGE}"
    return count, few, many


ILIKE_COUNT = "SELECT count(*) FROM messages WHERE (text ILIKE %(p)s OR media_filename ILIKE %(p)s)"
ILIKE_PAGE = (
    f"SELECT id FROM messages WHERE (text ILIKE %(p)s OR media_filename ILIKE %(p)s) ORDER BY id DESC LIMIT {PER_PAGE}"
)


def _timed(cursor: Any, statement: str, params: dict[str, Any]) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    cursor.execute(statement, params)
    rows = cursor.fetchall()
    return (time.perf_counter() - t0) * 1000, rows


def fts_ms(cursor: Any, document: str, typed: str) -> float:
    from app.services.search import MAX_RESULTS, ts_query_text

    params = {"q": ts_query_text(typed)}
    count_sql, few_sql, many_sql = _service_sql(document)
    t_count, rows = _timed(cursor, count_sql, params)
    t_page, _ = _timed(cursor, few_sql if rows[0][0] < MAX_RESULTS else many_sql, params)
    return t_count + t_page


def ilike_ms(cursor: Any, word: str) -> float:
    params = {"p": f"%{word}%"}
    return _timed(cursor, ILIKE_COUNT, params)[0] + _timed(cursor, ILIKE_PAGE, params)[0]


def matches(cursor: Any, typed: str) -> int:
    from app.services.search import ts_query_text

    cursor.execute(
        f"SELECT count(*) FROM messages WHERE {COLUMN} @@ to_tsquery('es_unaccent'::regconfig, %(q)s)",
        {"q": ts_query_text(typed)},
    )
    return int(cursor.fetchone()[0])


def explain(cursor: Any, typed: str) -> str:
    from app.services.search import MAX_RESULTS, ts_query_text

    params = {"q": ts_query_text(typed)}
    count_sql, few_sql, many_sql = _service_sql(COLUMN)
    cursor.execute(count_sql, params)
    page_sql = few_sql if cursor.fetchone()[0] < MAX_RESULTS else many_sql
    out = []
    for statement in (count_sql, page_sql):
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        out.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n\n".join(out)


def insert_ms_per_row(cursor: Any, conversation_id: int, rows: int) -> float:
    """Single-row INSERTs of varied texts in one transaction, rolled back: ms per row."""
    words = WORDS
    t0 = time.perf_counter()
    for i in range(rows):
        body = " ".join(words[(i * 7 + j * 13) % len(words)] for j in range(8))
        cursor.execute(
            "INSERT INTO messages (conversation_id, direction, sender, type, text, sent_at) "
            "VALUES (%s, 'in', 'customer', 'text', %s, now())",
            (conversation_id, body),
        )
    took = (time.perf_counter() - t0) * 1000 / rows
    cursor.connection.rollback()
    return took


def run_migration(url: str, direction: str) -> float:
    """Migration 0007's own upgrade() or downgrade(), timed, in one transaction."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    spec = importlib.util.spec_from_file_location("search_migration", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            t0 = time.perf_counter()
            with Operations.context(MigrationContext.configure(conn)):
                getattr(module, direction)()
            took = time.perf_counter() - t0
    finally:
        engine.dispose()
    return took


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Results:
    api_p50: dict[str, list[float]] = field(default_factory=dict)
    api_p99: dict[str, list[float]] = field(default_factory=dict)
    sql_ms: dict[str, list[float]] = field(default_factory=dict)
    ilike_ms: dict[str, list[float]] = field(default_factory=dict)
    alternative_ms: dict[str, list[float]] = field(default_factory=dict)
    matches: dict[str, int] = field(default_factory=dict)
    insert_ms: dict[str, float] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)
    samples: int = 0


def measure(server: BenchServer, args: argparse.Namespace) -> tuple[Results, str, dict[str, Any], str]:
    url, note = prepare(server, args.reseed)
    token, _agent_id = issue_token(url)
    auth = {"Authorization": f"Bearer {token}"}
    ours = BenchGunicorn("app-search", "wsgi:app", url)
    r = Results()
    raw = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    cursor = raw.cursor()
    try:
        cursor.execute("SELECT min(id) FROM conversations")
        conversation_id = cursor.fetchone()[0]
        for kind, (typed, _what) in SEARCHES.items():
            r.matches[kind] = matches(cursor, typed)
            r.plans[kind] = explain(cursor, typed)
        raw.rollback()
        ours.start()
        try:
            urls = {
                kind: f"{ours.base_url}{SEARCH_PATH}?q={quote(typed)}&per_page={PER_PAGE}"
                for kind, (typed, _) in SEARCHES.items()
            }
            for target in urls.values():  # warm-up: every worker thread, connection and the buffer cache
                sequential(target, auth, 10, 1.0, 60)
            for round_no in range(args.rounds):
                log.info("search: round %d/%d", round_no + 1, args.rounds)
                kinds = list(SEARCHES)
                kinds = kinds[round_no % len(kinds) :] + kinds[: round_no % len(kinds)]
                for kind in kinds:
                    latencies = sequential(urls[kind], auth, args.sequential, args.budget, 60)
                    r.samples += len(latencies)
                    r.api_p50.setdefault(kind, []).append(percentile(latencies, 50))
                    r.api_p99.setdefault(kind, []).append(percentile(latencies, 99))
                    typed = SEARCHES[kind][0]
                    r.sql_ms.setdefault(kind, []).append(
                        statistics.median(fts_ms(cursor, COLUMN, typed) for _ in range(5))
                    )
                    r.ilike_ms.setdefault(kind, []).append(statistics.median(ilike_ms(cursor, typed) for _ in range(3)))
                    raw.rollback()
                    log.info(
                        "  %-12s api p50 %7.2f ms  sql %7.2f ms  ILIKE %8.1f ms",
                        kind,
                        r.api_p50[kind][-1],
                        r.sql_ms[kind][-1],
                        r.ilike_ms[kind][-1],
                    )
        finally:
            ours.stop()
        memory = {"this project (search), at 1m": ours.memory.as_dict()} if ours.memory else {}
        cursor.execute(
            "SELECT pg_size_pretty(pg_relation_size('messages')), "
            "pg_size_pretty(pg_relation_size('ix_messages_search'))"
        )
        r.sizes["table (with the generated column)"], r.sizes["its GIN index"] = cursor.fetchone()
        raw.rollback()

        # What the search costs at ingest, and the alternative: a GIN index on the expression.
        log.info("search: ingest with the stored generated column and its index")
        r.insert_ms["stored generated column + GIN index (migration 0007)"] = insert_ms_per_row(
            cursor, conversation_id, args.inserts
        )
        log.info("search: migration 0007 downgrade, ingest without search")
        r.timings_s["migration 0007 downgrade"] = run_migration(url, "downgrade")
        r.insert_ms["no search (no column, no index)"] = insert_ms_per_row(cursor, conversation_id, args.inserts)
        log.info("search: the alternative: a GIN index on the expression")
        raw.autocommit = True
        cursor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        cursor.execute(
            "DO $$ BEGIN CREATE TEXT SEARCH CONFIGURATION es_unaccent (COPY = pg_catalog.spanish); "
            "ALTER TEXT SEARCH CONFIGURATION es_unaccent ALTER MAPPING FOR hword, hword_part, word "
            "WITH unaccent, spanish_stem; END $$"
        )
        cursor.execute("SET maintenance_work_mem = '256MB'")
        t0 = time.perf_counter()
        cursor.execute(f"CREATE INDEX ix_messages_search_expression ON messages USING gin (({EXPRESSION}))")
        r.timings_s["alternative: CREATE INDEX on the expression (no table rewrite)"] = time.perf_counter() - t0
        cursor.execute("ANALYZE messages")
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('ix_messages_search_expression'))")
        r.sizes["expression index"] = cursor.fetchone()[0]
        raw.autocommit = False
        for _ in range(args.rounds):
            for kind, (typed, _what) in SEARCHES.items():
                r.alternative_ms.setdefault(kind, []).append(
                    statistics.median(fts_ms(cursor, EXPRESSION, typed) for _ in range(3))
                )
            raw.rollback()
        r.insert_ms["alternative: GIN index on the expression"] = insert_ms_per_row(
            cursor, conversation_id, args.inserts
        )
        log.info("search: back to migration 0007 (timed)")
        raw.autocommit = True
        cursor.execute("DROP INDEX ix_messages_search_expression")
        cursor.execute("DROP TEXT SEARCH CONFIGURATION es_unaccent")
        cursor.execute("VACUUM (FULL, ANALYZE) messages")  # gone: the dropped column's data
        raw.autocommit = False
        r.timings_s["migration 0007 upgrade at 1 M messages (ADD COLUMN rewrites the table, CREATE INDEX)"] = (
            run_migration(url, "upgrade")
        )
        raw.autocommit = True
        cursor.execute("ANALYZE messages")
    finally:
        raw.close()
    return r, note, memory, url


def write_report(
    r: Results, note: str, memory: dict[str, Any], args: argparse.Namespace, took: float, load: str
) -> str:
    med = lambda values: statistics.median(values) if values else None  # noqa: E731
    table = md_table(
        "search | typed | matches | API p50 ms | API p99 ms | SQL ms (our 2 statements) | ILIKE scan ms | "
        "ILIKE / ours (SQL) | alternative: expression index SQL ms",
        "llrrrrrrr",
        (
            (
                f"{kind}: {what}",
                f"`{typed}`",
                f"{r.matches[kind]:,}",
                fmt_ms(med(r.api_p50[kind])),
                fmt_ms(med(r.api_p99[kind])),
                fmt_ms(med(r.sql_ms[kind])),
                fmt_ms(med(r.ilike_ms[kind])),
                f"{med(r.ilike_ms[kind]) / med(r.sql_ms[kind]):.0f}×",  # type: ignore[operator]
                fmt_ms(med(r.alternative_ms.get(kind, []))),
            )
            for kind, (typed, what) in SEARCHES.items()
        ),
    )
    checks = [
        TargetCheck(
            f"search p50 ≤ {target:g} ms at 1 M messages, {kind} word (`{SEARCHES[kind][0]}`, "
            f"{r.matches[kind]:,} matches)",
            f"{fmt_ms(med(r.api_p50[kind]))} ms",
            (med(r.api_p50[kind]) or 1e9) <= target,
        )
        for kind, target in TARGETS_MS.items()
    ]
    out = [
        "## Message search (issue 12)",
        "",
        *run_facts(args.command_line, took, args.revision, load, load_average()),
        "",
        f"`GET {SEARCH_PATH}?q=…&per_page={PER_PAGE}` (page 1) at {SCALE.label}, under gunicorn as Render runs it "
        "(`" + ", ".join(f"{k}={v}" for k, v in {**BENCH_ENV, **GUNICORN_ENV}.items()) + "`), with an API token; "
        f"beside it, in the same rounds, the service's two statements run directly and the baseline: "
        "`text ILIKE '%word%' OR media_filename ILIKE '%word%'` (count + newest page: a sequential scan, and "
        "it finds neither `canción` for `cancion` nor `facturas` for `factura`). Medians over "
        f"{args.rounds} rounds ({r.samples:,} API requests).",
        "",
        *table,
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### Stored generated column or expression index",
        "",
        f"Single-row INSERTs (as the webhook stores a message), {args.inserts:,} in one transaction, rolled back:",
        "",
        *md_table(
            "search index | ms per INSERT",
            "lr",
            ((name, f"{ms:.3f}") for name, ms in r.insert_ms.items()),
        ),
        "",
        *md_table("step at 1 M messages | seconds", "lr", ((name, f"{s:.1f}") for name, s in r.timings_s.items())),
        "",
        "Sizes: " + "; ".join(f"{k} {v}" for k, v in r.sizes.items()) + ".",
        "",
        "Migration 0007 adds the stored generated column `search_vector` and its GIN index. The "
        "alternative, a GIN index on the same expression, adds no column and rewrites nothing (only the "
        "index is built), but every row a search filters or counts outside the index runs the Spanish "
        "stemmer again: its queries (last column of the first table) on the same data, in the same run.",
        "",
        "### Query plans (EXPLAIN ANALYZE, BUFFERS)",
        "",
    ]
    for kind, plan in r.plans.items():
        out += [f"#### {kind} (`{SEARCHES[kind][0]}`)", "", "```", plan, "```", ""]
    out += ["### Per-round figures", ""]
    for kind in SEARCHES:
        out.append(rounds_line(f"{kind} / API", p50=r.api_p50[kind]))
        out.append(
            f"- {kind} / SQL: "
            + ", ".join(fmt_ms(v) for v in r.sql_ms[kind])
            + " ms; ILIKE "
            + ", ".join(fmt_ms(v) for v in r.ilike_ms[kind])
            + " ms"
        )
    out += [
        "",
        "### Set-up",
        "",
        f"- {note}.",
        f"- Data: {__doc__.split('Measured')[0].split('Its own database, ')[1].strip()}",
    ]
    publish("search", out, checks, memory, args.revision, args.server)
    return "\n".join([*table, "", *[c.line() for c in checks]])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=100, help="max sequential API requests per round and word")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of sequential requests per round and word")
    parser.add_argument("--inserts", type=int, default=3000, help="single-row INSERTs per index variant")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args(argv)
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.search_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    load = load_average()
    apply_bench_env()
    args.revision = code_revision()
    started = time.perf_counter()
    args.server = BenchServer()
    r, note, memory, _url = measure(args.server, args)
    summary = write_report(r, note, memory, args, time.perf_counter() - started, load)
    sys.stdout.write(summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
