"""One oddly shaped (but signed) message must not make its conversation unviewable.

A contact card with `"phones": 5` or an order with `"product_items": 5` used to make the page
and its live fragment answer 500 while the JSON API was fine. The parser now normalises those
fields once (lists of objects of strings where lists are expected), records what it dropped,
and every renderer gets well-formed data.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Message, WebhookDelivery
from app.whatsapp.payloads import parse_delivery
from tests import meta
from tests.test_pages import login

CARD = {"name": {"formatted_name": "Marta López"}, "phones": [{"phone": "+54 9 11 5555-0199", "type": "CELL"}]}
ODD: dict[str, tuple[str, Any]] = {
    "phones is a number": ("contacts", [{**CARD, "phones": 5}]),
    "emails is a number": ("contacts", [{**CARD, "emails": 5}]),
    "urls and addresses are strings": ("contacts", [{**CARD, "urls": "https://x", "addresses": "calle"}]),
    "a phone is a list": ("contacts", [{**CARD, "phones": [["+54"], {"phone": {"n": 1}, "type": True}]}]),
    "the name is a list": ("contacts", [{**CARD, "name": ["Marta"]}]),
    "org is a string": ("contacts", [{**CARD, "org": "ACME"}]),
    "a card is a number": ("contacts", [7, CARD]),
    "the cards are an object": ("contacts", {"name": {"formatted_name": "Marta"}}),
    "product_items is a number": ("order", {"catalog_id": "1", "text": "pedido", "product_items": 5}),
    "product_items holds junk": ("order", {"product_items": [5, "x", {"quantity": [2], "item_price": 10.5}]}),
    "the order is a list": ("order", [{"product_items": []}]),
    "button_reply is a number": ("interactive", {"type": "button_reply", "button_reply": 5}),
    "list_reply is a list": ("interactive", {"type": "list_reply", "list_reply": [{"title": "x"}]}),
    "button text is an object": ("button", {"payload": "STOP", "text": {"a": 1}}),
    "system body is a list": ("system", {"body": ["Ana cambió de número"], "wa_id": 5491155550002}),
}


def _deliver(post_webhook, msg_type: str, content: Any) -> Message:  # type: ignore[no-untyped-def]
    message = meta.message(msg_type, content=content)
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    return db.session.execute(select(Message).where(Message.wamid == message["id"])).scalar_one()


@pytest.mark.parametrize("case", list(ODD))
def test_an_oddly_shaped_message_still_renders_on_the_page_and_in_the_fragment(client, agent, post_webhook, case):
    msg_type, content = ODD[case]
    stored = _deliver(post_webhook, msg_type, content)
    login(client, agent.email)
    page = client.get(f"/?c={stored.conversation_id}")
    assert page.status_code == 200, case
    assert f'id="m-{stored.id}"' in page.text
    fragment = client.get(f"/inbox/fragments/conversations/{stored.conversation_id}")
    assert fragment.status_code == 200, case
    assert f'id="m-{stored.id}"' in fragment.text
    api = client.get(f"/whatsapp/api/conversaciones/{stored.conversation_id}/mensajes")
    assert api.status_code == 200


def test_the_page_shows_what_survives_of_a_broken_card(client, agent, post_webhook):
    stored = _deliver(post_webhook, "contacts", [{**CARD, "phones": [{"phone": 5491155550199, "type": "CELL"}, 5]}])
    login(client, agent.email)
    fragment = client.get(f"/inbox/fragments/conversations/{stored.conversation_id}").text
    assert "Marta López" in fragment and 'href="tel:5491155550199"' in fragment


def test_the_parser_normalises_cards_and_orders_and_records_what_it_dropped():
    cards = [7, {**CARD, "phones": 5, "emails": [{"email": "m@example.com", "type": None}, "x"], "org": "ACME"}]
    order = {"catalog_id": 12, "text": "pedido", "product_items": [5, {"product_retailer_id": 9, "quantity": 2}]}
    body = meta.delivery(
        meta.value(messages=[meta.message("contacts", content=cards), meta.message("order", content=order)])
    )
    parsed = parse_delivery(body)
    contacts, ordered = (m.payload for m in parsed.changes[0].messages)
    assert contacts["contacts"] == [
        {"name": {"formatted_name": "Marta López"}, "phones": [], "emails": [{"email": "m@example.com"}], "org": {}}
    ]
    assert ordered["order"] == {
        "catalog_id": "12",
        "text": "pedido",
        "product_items": [{"product_retailer_id": "9", "quantity": 2}],
    }
    problems = "\n".join(parsed.problems)
    for expected in (
        "messages[0].contacts[0] is not an object",
        "messages[0].contacts[1].phones is not a list",
        "messages[0].contacts[1].emails[1] is not an object",
        "messages[0].contacts[1].org is not an object",
        "messages[1].order.product_items[0] is not an object",
    ):
        assert expected in problems, problems


def test_a_well_formed_card_and_order_are_kept_as_sent_and_the_delivery_is_stored(post_webhook):
    card = {
        "name": {"formatted_name": "Marta López", "first_name": "Marta"},
        "phones": [{"phone": "+54 9 11 5555-0199", "wa_id": "5491155550199", "type": "CELL"}],
        "emails": [{"email": "m@example.com", "type": "WORK"}],
        "org": {"company": "ACME"},
        "birthday": "1990-01-01",
    }
    order = {
        "catalog_id": "1",
        "text": "pedido",
        "product_items": [{"product_retailer_id": "a", "quantity": 2, "item_price": 10.5, "currency": "ARS"}],
    }
    messages = [meta.message("contacts", content=[card]), meta.message("order", content=order)]
    response = post_webhook(meta.delivery(meta.value(messages=messages)))
    assert response.status_code == 200 and response.json["outcome"] == "stored"
    rows = {m.type: m.payload for m in db.session.execute(select(Message)).scalars()}
    assert rows["contacts"]["contacts"] == [card] and rows["order"]["order"] == order


def test_an_odd_message_makes_the_delivery_partial_with_its_problem(post_webhook):
    _deliver(post_webhook, "contacts", [{**CARD, "phones": 5}])
    delivery = db.session.execute(select(WebhookDelivery)).scalar_one()
    assert delivery.outcome == "partial"
    assert any("phones is not a list" in p for p in delivery.summary["problems"])
