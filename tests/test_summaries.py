"""The conversation summary rule (app/services/summaries.py): which columns a message moves."""

from __future__ import annotations

from app.services.summaries import Effect, effect_of


def test_a_customer_message_is_the_preview_counts_unread_and_opens_the_window():
    assert effect_of("text", "customer", "in") == Effect(activity=True, preview=True, customer=True, agent=False)


def test_an_agent_reply_and_its_echo_are_the_preview_and_the_last_agent_message():
    reply = Effect(activity=True, preview=True, customer=False, agent=True)
    assert effect_of("text", "agent", "out") == reply
    assert effect_of("template", "agent", "out") == reply


def test_reactions_edits_and_revocations_move_only_the_activity():
    for message_type in ("reaction", "edit", "revoke"):
        for sender, direction in (("customer", "in"), ("agent", "out")):
            assert effect_of(message_type, sender, direction) == Effect(
                activity=True, preview=False, customer=False, agent=False
            )


def test_a_system_message_is_the_preview_but_not_unread():
    assert effect_of("system", "system", "in") == Effect(activity=True, preview=True, customer=False, agent=False)


def test_a_note_never_becomes_the_preview_nor_moves_the_list():
    assert effect_of("note", "agent", "out") == Effect(activity=False, preview=False, customer=False, agent=False)
