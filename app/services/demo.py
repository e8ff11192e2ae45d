"""Bulk demo data: realistic Spanish-language conversations, generated inside PostgreSQL.

Set-based SQL (`INSERT … SELECT … generate_series`), so a million messages load in seconds,
for demos and benchmarks. The conversation summary columns are filled the same way the
webhook keeps them, so the list endpoint sees exactly what production would.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from app.extensions import db

FIRST_NAMES = [
    "María",
    "José",
    "Lucía",
    "Carlos",
    "Sofía",
    "Javier",
    "Valentina",
    "Diego",
    "Camila",
    "Andrés",
    "Paula",
    "Miguel",
    "Daniela",
    "Alejandro",
    "Martina",
    "Fernando",
    "Isabel",
    "Ricardo",
    "Elena",
    "Pablo",
]
LAST_NAMES = [
    "García",
    "Rodríguez",
    "Martínez",
    "López",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Cruz",
    "Morales",
    "Ortiz",
    "Gutiérrez",
    "Chávez",
    "Ramos",
    "Vargas",
]
CUSTOMER_LINES = [
    "Hola, buenas tardes. ¿Tienen disponibilidad para mañana?",
    "Quería saber el estado de mi pedido, por favor.",
    "¿Cuál es el horario de atención del sábado?",
    "Me llegó el producto dañado, ¿cómo hago el cambio?",
    "Gracias, quedo atento a su respuesta.",
    "¿Aceptan pago con tarjeta o solo transferencia?",
    "¿Me pueden enviar la factura a mi correo?",
    "Perfecto, muchas gracias por la ayuda 🙌",
    "¿Hacen envíos a Córdoba?",
    "Necesito cambiar la dirección de entrega.",
]
AGENT_LINES = [
    "¡Hola! Con gusto te ayudo. ¿Me confirmas tu número de pedido?",
    "Tu pedido sale hoy y llega en 24 a 48 horas.",
    "Atendemos de 9 a 13 h los sábados.",
    "Lamentamos lo ocurrido; te enviamos la etiqueta para el cambio.",
    "Aceptamos tarjeta, transferencia y efectivo.",
    "Listo, la factura ya está en tu correo.",
    "Sí, enviamos a todo el país.",
    "Actualicé la dirección de entrega. ¿Algo más?",
]


@dataclass
class SeedResult:
    conversations: int
    messages: int


def _sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def seed(conversations: int, messages_per_conversation: int, phone_number_id: str = "demo-phone-number") -> SeedResult:
    if conversations < 1 or messages_per_conversation < 1:
        raise ValueError("conversations and messages per conversation must be at least 1")
    session = db.session
    params = {"n": conversations, "m": messages_per_conversation, "pnid": phone_number_id}
    session.execute(
        text(
            "INSERT INTO business_numbers (phone_number_id, display_phone_number) "
            "VALUES (:pnid, '+54 11 5555-0000') ON CONFLICT (phone_number_id) DO NOTHING"
        ),
        params,
    )
    base = session.execute(text("SELECT coalesce(max(id), 0) FROM contacts")).scalar_one()
    # One run's rows are told apart by a fresh tag, so seeding twice adds rather than collides.
    tag = session.execute(text("SELECT substr(md5(random()::text), 1, 8)")).scalar_one()
    params.update(base=base, tag=tag)
    session.execute(
        text(
            f"""
            INSERT INTO contacts (wa_id, profile_name)
            SELECT '549' || lpad((:base + g)::text, 10, '0'),
                   ({_sql_array(FIRST_NAMES)})[1 + (g * 7) % {len(FIRST_NAMES)}] || ' ' ||
                   ({_sql_array(LAST_NAMES)})[1 + (g * 13) % {len(LAST_NAMES)}]
            FROM generate_series(1, :n) AS g
            """
        ),
        params,
    )
    session.execute(text("DROP TABLE IF EXISTS demo_conversations"))
    session.execute(
        text(
            """
            CREATE TEMP TABLE demo_conversations ON COMMIT DROP AS
            WITH agents_list AS (SELECT array_agg(id ORDER BY id) AS ids FROM agents WHERE active),
            new_contacts AS (
                SELECT id, row_number() OVER (ORDER BY id) AS g FROM contacts
                WHERE id > :base AND wa_id LIKE '549%'
            ),
            inserted AS (
                INSERT INTO conversations (business_number_id, contact_id, status, assignee_id, last_activity_at)
                SELECT (SELECT id FROM business_numbers WHERE phone_number_id = :pnid),
                       c.id,
                       (ARRAY['open', 'open', 'open', 'pending', 'resolved'])[1 + (c.g % 5)],
                       CASE WHEN c.g % 3 = 0 OR cardinality(a.ids) IS NULL THEN NULL
                            ELSE a.ids[1 + (c.g % cardinality(a.ids))] END,
                       now() - make_interval(mins => (c.g * 37 % 43200)::int)
                FROM new_contacts c CROSS JOIN agents_list a
                RETURNING id, last_activity_at
            )
            SELECT id, last_activity_at, row_number() OVER (ORDER BY id) AS g FROM inserted
            """
        ),
        params,
    )
    session.execute(
        text(
            f"""
            INSERT INTO messages (wamid, conversation_id, direction, sender, agent_id, type, text,
                                  sent_at, received_at, status, status_at, is_read)
            SELECT 'wamid.demo.' || :tag || '.' || c.id || '.' || k,
                   c.id,
                   CASE WHEN k % 2 = 1 THEN 'in' ELSE 'out' END,
                   CASE WHEN k % 2 = 1 THEN 'customer' ELSE 'agent' END,
                   CASE WHEN k % 2 = 1 THEN NULL ELSE conv.assignee_id END,
                   'text',
                   CASE WHEN k % 2 = 1
                        THEN ({_sql_array(CUSTOMER_LINES)})[1 + ((c.g + k) % {len(CUSTOMER_LINES)})]
                        ELSE ({_sql_array(AGENT_LINES)})[1 + ((c.g + k) % {len(AGENT_LINES)})] END,
                   c.last_activity_at - make_interval(mins => ((:m - k) * 3)::int),
                   c.last_activity_at - make_interval(mins => ((:m - k) * 3)::int),
                   CASE WHEN k % 2 = 1 THEN NULL WHEN k >= :m - 1 THEN 'delivered' ELSE 'read' END,
                   CASE WHEN k % 2 = 1 THEN NULL ELSE c.last_activity_at END,
                   -- the newest customer messages of every fourth conversation stay unread
                   NOT (c.g % 4 = 0 AND k >= :m - 2)
            FROM demo_conversations c
            JOIN conversations conv ON conv.id = c.id
            CROSS JOIN generate_series(1, :m) AS k
            """
        ),
        params,
    )
    session.execute(
        text(
            """
            UPDATE conversations conv SET
                last_message_id = s.last_id,
                last_message_at = s.last_at,
                last_agent_message_id = s.last_agent_id,
                last_customer_message_at = s.last_customer_at,
                unread_count = s.unread,
                last_activity_at = s.last_at
            FROM (
                SELECT m.conversation_id,
                       (array_agg(m.id ORDER BY m.sent_at DESC, m.id DESC))[1] AS last_id,
                       max(m.sent_at) AS last_at,
                       (array_agg(m.id ORDER BY m.sent_at DESC, m.id DESC)
                            FILTER (WHERE m.direction = 'out'))[1] AS last_agent_id,
                       max(m.sent_at) FILTER (WHERE m.sender = 'customer') AS last_customer_at,
                       count(*) FILTER (WHERE m.direction = 'in' AND NOT m.is_read) AS unread
                FROM messages m JOIN demo_conversations d ON d.id = m.conversation_id
                GROUP BY m.conversation_id
            ) s
            WHERE conv.id = s.conversation_id
            """
        )
    )
    session.commit()
    session.execute(text("ANALYZE contacts; ANALYZE conversations; ANALYZE messages"))
    session.commit()
    return SeedResult(conversations=conversations, messages=conversations * messages_per_conversation)
