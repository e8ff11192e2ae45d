"""Property tests: whatever a correctly signed body holds, the webhook never answers 5xx.

Every body here carries a VALID signature, so it reaches the parser: random JSON values,
random mutations of a rich Meta delivery (wrong types, dropped keys, ~100 KB strings,
~1000 levels of nesting), truncated JSON and bytes that are not UTF-8. The properties:

- the answer is never a 5xx;
- a JSON object is answered 200, anything else (not an object, not JSON, not UTF-8) 400;
- after a 400 nothing was stored;
- after a 200 the raw delivery row exists, the answer's counts match the rows written, no
  message lacks its conversation, and what a mutation left intact is stored all the same;
- after a 200 every conversation it touched renders: the inbox's thread fragment, fetched as
  a logged-in agent, answers 200 and shows every message the API lists for it (one oddly
  shaped message must not make a conversation unviewable).

Hypothesis reuses the function-scoped fixtures across examples, so each example runs inside
its own savepoint (`isolated()`), rolled back afterwards: examples never see each other's rows.

FUZZ_EXAMPLES sets the number of examples per property (default 200; `make drills` and
`make test` use 1667, so the 6 properties generate 10,002 bodies).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, Message, StatusEvent, WebhookDelivery
from app.ratelimits import rate_limiter
from app.whatsapp.payloads import MAX_JSON_DEPTH
from tests import meta
from tests.test_pages import login

pytestmark = pytest.mark.drill

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# --- the valid delivery that mutations start from -------------------------------------------

TS = 1_750_000_000
CUSTOMER, OTHER = "5491155550001", "5491155550002"
MESSAGE_FIELDS = {"messages": "messages", "smb_message_echoes": "message_echoes"}


CARD = {
    "name": {"formatted_name": "Rachel Green", "first_name": "Rachel"},
    "phones": [{"phone": "+1 555 0100", "wa_id": "15550100", "type": "CELL"}],
    "emails": [{"email": "rachel@example.com", "type": "WORK"}],
    "org": {"company": "Central Perk"},
}


def _id(name: str) -> str:
    return f"wamid.FUZZ.{name}"


def build_template() -> dict[str, Any]:
    """One delivery with every message type, statuses, an echo and a non-message field."""
    m = meta.message
    messages = [
        m(id=_id("text"), ts=TS, content={"body": "Hola, ¿hay stock? 🙂"}),
        m("image", id=_id("image"), ts=TS + 1, content={"id": "media-1", "mime_type": "image/jpeg", "caption": "foto"}),
        m("document", id=_id("doc"), ts=TS + 2, content={"id": "media-2", "filename": "f.pdf", "sha256": "x="}),
        m("audio", id=_id("audio"), ts=TS + 3, content={"id": "media-3", "voice": True}),
        m("location", id=_id("loc"), ts=TS + 4, content={"latitude": -34.6, "longitude": -58.4, "name": "Obelisco"}),
        m("contacts", id=_id("cards"), ts=TS + 5, content=[CARD]),
        m(
            "interactive",
            id=_id("interactive"),
            ts=TS + 6,
            content={"type": "button_reply", "button_reply": {"id": "si", "title": "Sí"}},
            context={"from": meta.DISPLAY_NUMBER, "id": _id("out")},
        ),
        m("button", id=_id("button"), ts=TS + 7, content={"payload": "STOP", "text": "Parar"}),
        m("reaction", id=_id("reaction"), ts=TS + 8, content={"message_id": _id("text"), "emoji": "👍"}),
        m(
            "edit",
            id=_id("edit"),
            ts=TS + 9,
            content={"original_message_id": _id("text"), "message": {"type": "text", "text": {"body": "editado"}}},
        ),
        m("revoke", id=_id("revoke"), ts=TS + 10, content={"original_message_id": _id("image")}),
        m(
            "order",
            id=_id("order"),
            ts=TS + 11,
            content={"catalog_id": "1", "text": "pedido", "product_items": [{"quantity": 2, "item_price": 10.5}]},
        ),
        m("system", id=_id("system"), ts=TS + 12, content={"body": "Ana cambió de número", "wa_id": OTHER}),
        m("unsupported", id=_id("unsupported"), ts=TS + 13, errors=[{"code": 131051, "title": "Message type unknown"}]),
        m(id=_id("other"), ts=TS + 14, sender=OTHER, from_user_id="US.FUZZ2", context={"forwarded": True}),
        m(id=_id("user-id-only"), ts=TS + 15, sender=None, from_user_id="US.FUZZ3"),
    ]
    contacts = [
        meta.contact(CUSTOMER, "Ana"),
        meta.contact(OTHER, "Bea", user_id="US.FUZZ2"),
        meta.contact(None, "Ciro", user_id="US.FUZZ3"),
    ]
    statuses = [
        meta.status(_id("out"), "delivered", ts=TS + 20),
        meta.status(_id("out"), "read", ts=TS + 21),
        meta.status(_id("gone"), "failed", ts=TS + 22, errors=[{"code": 131026, "title": "Message undeliverable"}]),
    ]
    echo = {
        "from": meta.DISPLAY_NUMBER,
        "to": CUSTOMER,
        "id": _id("out"),
        "timestamp": str(TS + 16),
        "type": "text",
        "text": {"body": "Hola, te ayudo"},
    }
    payload = meta.delivery(meta.value(messages=messages, statuses=statuses, contacts=contacts))
    payload["entry"][0]["changes"].append(
        {
            "field": "smb_message_echoes",
            "value": meta.value(contacts=[meta.contact(CUSTOMER, "Ana")]) | {"message_echoes": [echo]},
        }
    )
    payload["entry"].append(
        {
            "id": meta.WABA_ID,
            "time": TS,
            "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED"}}],
        }
    )
    return payload


TEMPLATE = build_template()
TEMPLATE_VALUES = {change["field"]: change["value"] for entry in TEMPLATE["entry"] for change in entry["changes"]}
TEMPLATE_MESSAGE_COUNT = sum(len(v.get(key, [])) for f, v in TEMPLATE_VALUES.items() for key in [MESSAGE_FIELDS.get(f)])
TEMPLATE_STATUS_COUNT = len(TEMPLATE_VALUES["messages"]["statuses"])


# --- strategies -----------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "",
    "\x00",
    "a\x00b",
    " ",
    "sent",
    "READ",
    "failed",
    "text",
    "image",
    "edit",
    "revoke",
    "reaction",
    "interactive",
    "messages",
    "smb_message_echoes",
    "whatsapp_business_account",
    meta.PHONE_NUMBER_ID,
    CUSTOMER,
    "wamid.X",
    "1697043223",
    "-1",
    "1e400",
    "NaN",
    "²",
    "١٢٣",
    "\ud800",
    "x\udfffy",
    "🙂",
    "Ñandú",
    "\u202e",
    "a-status-name-longer-than-sixteen-characters",
]
KNOWN_KEYS = [
    "object",
    "entry",
    "id",
    "changes",
    "field",
    "value",
    "metadata",
    "phone_number_id",
    "display_phone_number",
    "contacts",
    "wa_id",
    "user_id",
    "profile",
    "name",
    "messages",
    "message_echoes",
    "statuses",
    "from",
    "to",
    "timestamp",
    "type",
    "text",
    "body",
    "context",
    "errors",
    "code",
    "status",
]

texts = (
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40)
    | st.sampled_from(SPECIAL_STRINGS)
    | st.integers(min_value=4000, max_value=5000).map(lambda n: "9" * n)  # past int()'s 4300-digit limit
)
keys = texts | st.sampled_from(KNOWN_KEYS)
integers = st.integers(min_value=-(10**30), max_value=10**30) | st.sampled_from(
    [0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, -(2**64), 10**400, -(10**400)]
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e308, 5e-324, 1697043223.5])
scalars = st.none() | st.booleans() | integers | floats | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)
json_objects = st.dictionaries(keys, json_values, max_size=8)


def encode(value: Any, ensure_ascii: bool) -> bytes:
    """JSON bytes (NaN/Infinity included, as Python writes them); lone surrogates escaped."""
    try:
        return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True).encode("utf-8")


# --- mutations ------------------------------------------------------------------------------

Path = tuple[str | int, ...]


def paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every position below the root."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def parent_of(doc: Any, path: Path) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


CODE_POINTS = [*range(0x20, 0xD800), *range(0xE000, 0x10000), *range(0x1F300, 0x1F700)]


def huge_string(kind: str, seed: int) -> str:
    """About 100 KB of text."""
    rng = random.Random(seed)
    if kind == "hex":  # incompressible ASCII
        return rng.randbytes(50_000).hex()
    if kind == "unicode":
        return "".join(map(chr, rng.choices(CODE_POINTS, k=40_000)))
    return "ñ" * 50_000  # compresses well


def deep_json(depth: int, kind: str, leaf: str) -> str:
    """JSON text nested `depth` levels (written by hand: encoding it would hit Python's recursion limit)."""
    opening, closing = [], []
    for level in range(depth):
        as_list = kind == "list" or (kind == "mixed" and level % 2 == 0)
        opening.append("[" if as_list else '{"d":')
        closing.append("]" if as_list else "}")
    return "".join(opening) + leaf + "".join(reversed(closing))


WRONG_TYPES = [None, True, False, 0, -1, 2**40, 1.5, float("nan"), "", "x", [], {}, [None], {"": None}]


class Mutated:
    """A mutated copy of TEMPLATE and its JSON bytes; its repr lists the mutations, not 100 KB."""

    def __init__(self, doc: dict[str, Any], body: bytes, mutations: list[str]) -> None:
        self.doc, self.body, self.mutations = doc, body, mutations

    def __repr__(self) -> str:
        return f"Mutated({len(self.body)} bytes: {'; '.join(self.mutations)})"


@st.composite
def mutated_deliveries(draw: st.DrawFn) -> Mutated:
    """A copy of TEMPLATE with 1-4 mutations."""
    doc = copy.deepcopy(TEMPLATE)
    deep: dict[str, str] = {}
    mutations: list[str] = []
    for n in range(draw(st.integers(min_value=1, max_value=4))):
        candidates = list(paths(doc))
        if not candidates:  # everything was dropped
            break
        path = draw(st.sampled_from(candidates))
        parent, key = parent_of(doc, path), path[-1]
        op = draw(st.sampled_from(["random", "wrong_type", "drop", "huge", "deep"]))
        if op == "drop":
            del parent[key]
            detail = ""
        elif op == "random":
            parent[key] = draw(json_values)
            detail = repr(parent[key])[:200]
        elif op == "wrong_type":
            current = type(parent[key])
            # A copy: a later mutation must not change WRONG_TYPES' own [None] or {"": None}
            # (that made generation differ between examples: FlakyStrategyDefinition).
            parent[key] = copy.deepcopy(draw(st.sampled_from([v for v in WRONG_TYPES if type(v) is not current])))
            detail = repr(parent[key])
        elif op == "huge":
            kind = draw(st.sampled_from(["hex", "unicode", "repeated"]))
            parent[key] = huge_string(kind, draw(st.integers(0, 2**32)))
            detail = kind
        else:
            sentinel = f"__deep_{n}__"
            depth = draw(st.integers(min_value=900, max_value=1100))
            kind = draw(st.sampled_from(["list", "dict", "mixed"]))
            leaf = draw(st.sampled_from(['"x"', "1", "null", "{}", "[]", '"\\u0000"']))
            deep[json.dumps(sentinel)] = deep_json(depth, kind, leaf)
            parent[key] = sentinel
            detail = f"{kind} x{depth}"
        mutations.append(f"{op} {'/'.join(map(str, path))} {detail}".strip())
        event(f"mutation: {op}")
    body = encode(doc, draw(st.booleans()))
    for sentinel, text in deep.items():
        body = body.replace(sentinel.encode(), text.encode())
    return Mutated(doc, body, mutations)


INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"]


# --- helpers --------------------------------------------------------------------------------


def count(model, *where) -> int:  # type: ignore[no-untyped-def]
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


@contextmanager
def isolated() -> Iterator[None]:
    """Run one example inside a savepoint that is rolled back: it sees no other example's rows.

    The savepoint is the connection's, opened while the session has no transaction: the
    request shares the test's session (same app context) and its commit releases only the
    session's own savepoint, nested inside this one.
    """
    db.session.close()
    savepoint = db.session.get_bind().begin_nested()
    try:
        yield
    finally:
        db.session.close()
        savepoint.rollback()


def stored_statuses() -> set[tuple[str, str]]:
    return {(wamid, status) for wamid, status in db.session.execute(select(StatusEvent.wamid, StatusEvent.status))}


def assert_refused_and_nothing_stored(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, (response.status_code, response.json)
    assert response.json["error"] == "invalid_body"
    assert count(WebhookDelivery) == 0
    assert count(Message) == 0 and count(StatusEvent) == 0 and count(Conversation) == 0


def assert_accepted_and_stored(response, body: bytes) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, (response.status_code, response.json)
    digest = hashlib.sha256(body).hexdigest()
    delivery = db.session.execute(select(WebhookDelivery).where(WebhookDelivery.body_sha256 == digest)).scalar_one()
    assert delivery.body.encode("utf-8") == body
    assert count(WebhookDelivery) == 1
    assert (
        response.json["messages_stored"]
        == count(Message)
        == delivery.summary["messages"] - response.json["messages_duplicate"]
    )
    orphans = count(
        Message.__table__.outerjoin(Conversation.__table__, Conversation.id == Message.conversation_id),
        Conversation.id.is_(None),
    )
    assert orphans == 0


@pytest.fixture
def inbox(client, agent):  # type: ignore[no-untyped-def]
    """The test client logged in as an agent (the webhook posts share it: they need no session)."""
    assert login(client, agent.email).status_code == 302
    return client


def assert_every_conversation_renders(inbox) -> None:  # type: ignore[no-untyped-def]
    """The thread fragment of each stored conversation answers 200 and shows every message the
    JSON API lists for it. The pages' rate limit would stop a long run: its counters start afresh."""
    rate_limiter().reset()
    for conversation_id in db.session.execute(select(Conversation.id)).scalars():
        fragment = inbox.get(f"/inbox/fragments/conversations/{conversation_id}")
        assert fragment.status_code == 200, (conversation_id, fragment.status_code)
        listed = inbox.get(f"/whatsapp/api/conversaciones/{conversation_id}/mensajes?limit=40")
        assert listed.status_code == 200, listed.json
        missing = [m["id"] for m in listed.json["messages"] if f'id="m-{m["id"]}"' not in fragment.text]
        assert missing == [], (conversation_id, missing)


def intact_items(doc: dict[str, Any]) -> tuple[set[str], set[tuple[str, str]]]:
    """Message ids and (id, status) pairs the mutations left exactly as in TEMPLATE, in a change
    whose field, metadata and contacts are intact too: those must be stored whatever else broke."""
    messages: set[str] = set()
    statuses: set[tuple[str, str]] = set()
    entries = doc.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str):
                continue
            if change["field"] not in MESSAGE_FIELDS:
                continue
            value, template = change.get("value"), TEMPLATE_VALUES[change["field"]]
            if not isinstance(value, dict) or any(value.get(k) != template.get(k) for k in ("metadata", "contacts")):
                continue
            items, key = value.get(MESSAGE_FIELDS[change["field"]]), MESSAGE_FIELDS[change["field"]]
            messages |= {m["id"] for m in items if m in template.get(key, [])} if isinstance(items, list) else set()
            found = value.get("statuses")
            if isinstance(found, list) and change["field"] == "messages":
                statuses |= {(s["id"], s["status"]) for s in found if s in template["statuses"]}
    return messages, statuses


# --- sanity of the harness ------------------------------------------------------------------


def test_the_unmutated_template_is_stored_completely(post_webhook, inbox):
    with isolated():
        body = meta.encode(TEMPLATE)
        response = post_webhook(body)
        assert_accepted_and_stored(response, body)
        assert_every_conversation_renders(inbox)
        assert response.json["outcome"] == "stored"
        assert response.json["messages_stored"] == TEMPLATE_MESSAGE_COUNT == 17
        assert count(StatusEvent) == TEMPLATE_STATUS_COUNT == 3
        assert intact_items(TEMPLATE) == (
            set(db.session.execute(select(Message.wamid)).scalars()),
            stored_statuses(),
        )
    assert count(WebhookDelivery) == 0 and count(Message) == 0


def test_mutations_reach_every_part_of_the_template():
    every = list(paths(TEMPLATE))
    assert len(every) > 200
    assert ("entry", 0, "changes", 0, "value", "messages", 9, "edit", "original_message_id") in every
    assert ("entry", 0, "changes", 1, "value", "message_echoes", 0, "to") in every


def test_deep_json_has_the_nesting_asked_for():
    text = deep_json(1000, "mixed", "1")
    assert text.count("[") == 500 and text.count('{"d":') == 500
    value, depth = json.loads(deep_json(50, "mixed", "1")), 0
    while value != 1:
        value, depth = value[0] if isinstance(value, list) else value["d"], depth + 1
    assert depth == 50


# --- properties -----------------------------------------------------------------------------


@fuzz_settings
@given(value=json_values, ensure_ascii=st.booleans())
def test_any_json_value_is_answered_200_if_an_object_else_400(post_webhook, inbox, value, ensure_ascii):
    body = encode(value, ensure_ascii)
    with isolated():
        response = post_webhook(body)
        if isinstance(value, dict):
            assert_accepted_and_stored(response, body)
            assert_every_conversation_renders(inbox)
        else:
            assert_refused_and_nothing_stored(response)


@fuzz_settings
@given(value=json_objects, ensure_ascii=st.booleans())
def test_any_json_object_with_metas_keys_is_answered_200(post_webhook, inbox, value, ensure_ascii):
    body = encode({"object": "whatsapp_business_account", "entry": [value]}, ensure_ascii)
    with isolated():
        assert_accepted_and_stored(post_webhook(body), body)
        assert_every_conversation_renders(inbox)


@fuzz_settings
@given(delivery=mutated_deliveries())
def test_mutated_delivery_is_answered_200_and_what_is_intact_is_stored(post_webhook, inbox, delivery):
    doc, body = delivery.doc, delivery.body
    with isolated():
        response = post_webhook(body)
        assert_accepted_and_stored(response, body)
        assert_every_conversation_renders(inbox)
        messages, statuses = intact_items(doc)
        share = "none" if not messages else "all" if len(messages) == TEMPLATE_MESSAGE_COUNT else "some"
        event(f"intact messages: {share}")
        event(f"outcome: {response.json['outcome']}")
        stored = set(db.session.execute(select(Message.wamid)).scalars())
        assert messages <= stored
        assert statuses <= stored_statuses()


@fuzz_settings
@given(body=mutated_deliveries().map(lambda m: m.body) | json_objects.map(lambda v: encode(v, False)), data=st.data())
def test_truncated_json_is_400_and_stores_nothing(post_webhook, body, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    with isolated():
        assert_refused_and_nothing_stored(post_webhook(body[:cut]))


@fuzz_settings
@given(body=mutated_deliveries().map(lambda m: m.body) | json_objects.map(lambda v: encode(v, True)), data=st.data())
def test_body_that_is_not_utf8_is_400_and_stores_nothing(post_webhook, body, data):
    position = data.draw(st.integers(min_value=0, max_value=len(body)))
    bad = data.draw(st.sampled_from(INVALID_UTF8))
    with isolated():
        assert_refused_and_nothing_stored(post_webhook(body[:position] + bad + body[position:]))


@fuzz_settings
@given(blob=st.binary(min_size=1, max_size=200))
def test_random_bytes_are_400_unless_they_are_a_json_object(post_webhook, inbox, blob):
    with isolated():
        response = post_webhook(blob)
        try:
            is_object = isinstance(json.loads(blob.decode("utf-8")), dict)
        except (UnicodeDecodeError, ValueError, RecursionError):
            is_object = False
        if is_object:
            assert_accepted_and_stored(response, blob)
            assert_every_conversation_renders(inbox)
        else:
            assert_refused_and_nothing_stored(response)


# --- bodies the properties found answered 5xx (or 400), kept as fixed examples ----------------


def _one(message: dict[str, Any], **value: Any) -> bytes:
    return meta.encode(meta.delivery(meta.value(messages=[message]) | value))


def _ascii(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()  # ensure_ascii: lone surrogates travel as escapes


def _with_deep(body: bytes, depth: int) -> bytes:
    return body.replace(b'"__deep__"', deep_json(depth, "mixed", '"fondo"').encode())


HUGE_ID = huge_string("hex", 7)
# name: (the body, what must hold once it is stored)
FOUND: dict[str, tuple[Callable[[], bytes], Callable[[], bool]]] = {
    "lone surrogate in a text body": (
        lambda: _ascii(meta.delivery(meta.value(messages=[meta.message(id=_id("s1"), content={"body": "a\ud800b"})]))),
        lambda: db.session.execute(select(Message.text)).scalar_one() == "a\ufffdb",
    ),
    "lone surrogate in a key": (
        lambda: _ascii(meta.delivery(meta.value(messages=[meta.message(id=_id("s2"), extra={"\udfff": 1})]))),
        lambda: db.session.execute(select(Message.payload)).scalar_one()["extra"] == {"\ufffd": 1},
    ),
    "status name longer than its column": (
        lambda: meta.encode(meta.delivery(meta.value(statuses=[meta.status(_id("s3"), "x" * 17)]))),
        lambda: count(StatusEvent) == 0,
    ),
    "error code that isdigit() but int() refuses": (
        lambda: meta.encode(
            meta.delivery(meta.value(statuses=[meta.status(_id("s4"), "failed", errors=[{"code": "²"}])]))
        ),
        lambda: db.session.execute(select(StatusEvent.error_code)).scalar_one() is None,
    ),
    "error code of 5000 digits": (
        lambda: meta.encode(
            meta.delivery(meta.value(statuses=[meta.status(_id("s5"), "failed", errors=[{"code": "9" * 5000}])]))
        ),
        lambda: db.session.execute(select(StatusEvent.error_code)).scalar_one() is None,
    ),
    "timestamp beyond float range": (
        lambda: _one(meta.message(id=_id("s6")) | {"timestamp": 10**400}),
        lambda: db.session.execute(select(Message.sent_at)).scalar_one() is not None,
    ),
    "latitude beyond float range": (
        lambda: _one(meta.message("location", id=_id("s7"), content={"latitude": 10**400, "longitude": 1})),
        lambda: db.session.execute(select(Message.latitude, Message.longitude)).one() == (None, 1.0),
    ),
    "100 KB message id": (
        lambda: _one(meta.message(id=HUGE_ID)),
        lambda: count(Message) == 0,
    ),
    "100 KB wa_id and user_id": (
        lambda: _one(meta.message(id=_id("s8"), sender=HUGE_ID), contacts=[meta.contact(HUGE_ID, user_id=HUGE_ID)]),
        lambda: count(Contact) == 0,
    ),
    "100 KB phone_number_id": (
        lambda: meta.encode(meta.delivery(meta.value(messages=[meta.message(id=_id("s9"))], phone_number_id=HUGE_ID))),
        lambda: count(BusinessNumber) == 0 and count(Message) == 0,
    ),
    "100 KB reaction target": (
        lambda: _one(meta.message("reaction", id=_id("s10"), content={"message_id": HUGE_ID, "emoji": "👍"})),
        lambda: db.session.execute(select(Message.reaction_to_wamid)).scalar_one() is None,
    ),
    "1000 levels of nesting inside a message": (
        lambda: _with_deep(_one(meta.message(id=_id("s11"), extra="__deep__")), 1000),
        lambda: count(Message) == 1,
    ),
    "1000 levels of nesting inside Meta's errors": (
        lambda: _with_deep(_one(meta.message(id=_id("s12")), errors="__deep__"), 1000),
        lambda: count(Message) == 1,
    ),
    "contact card whose phones are a number": (
        lambda: _one(meta.message("contacts", id=_id("s13"), content=[{**CARD, "phones": 5, "emails": 5}])),
        lambda: db.session.execute(select(Message.payload)).scalar_one()["contacts"][0]["phones"] == [],
    ),
    "order whose product_items are a number": (
        lambda: _one(meta.message("order", id=_id("s14"), content={"text": "pedido", "product_items": 5})),
        lambda: db.session.execute(select(Message.payload)).scalar_one()["order"]["product_items"] == [],
    ),
    "1000 levels of nesting at the top": (
        lambda: _with_deep(meta.encode({"object": "whatsapp_business_account", "entry": "__deep__"}), 1000),
        lambda: count(Message) == 0,
    ),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_body_that_once_failed_is_answered_200_and_stored(post_webhook, inbox, name):
    make_body, check = FOUND[name]
    body = make_body()
    with isolated():
        response = post_webhook(body)
        assert_accepted_and_stored(response, body)
        assert check(), name
        assert_every_conversation_renders(inbox)


def test_body_nested_beyond_the_limit_is_400_and_leaves_the_recursion_limit_as_it_was(post_webhook):
    limit = sys.getrecursionlimit()
    body = _with_deep(meta.encode({"entry": "__deep__"}), limit + MAX_JSON_DEPTH + 10)
    with isolated():
        response = post_webhook(body)
        assert_refused_and_nothing_stored(response)
        assert response.json["message"] == "body is nested too deeply"
    assert sys.getrecursionlimit() == limit
