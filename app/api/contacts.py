"""Contact profiles from the API: the team's name, notes and attributes, and the history."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import serializers
from app.api.docs import API_AUTH, API_ERRORS, INVALID_BODY, documented, error_answer, json_response
from app.api.guards import api_auth_required
from app.api.responses import ContactProfile
from app.api.schemas import ContactPatch
from app.api.validation import accepts
from app.api.views import bp
from app.services import contacts

CONTACT_ID = {"contact_id": "The contact's id (`contact.id` of a conversation). Unknown ids answer 404."}
NO_CONTACT = error_answer("not_found", "No contact with that id.")


@bp.get("/contactos/<id:contact_id>")
@documented(
    "getContact",
    tag="conversations",
    security=API_AUTH,
    path=CONTACT_ID,
    responses={200: json_response("The contact's profile.", ContactProfile), 404: NO_CONTACT, **API_ERRORS},
)
@api_auth_required
def contact(contact_id: int) -> Any:
    """A contact's profile

    WhatsApp's own fields (`wa_id`, `profile_name`), the team's (`display_name`, `notes`,
    `attributes`), the name the inbox shows (`name`), and every conversation with them, newest
    activity first, with its status and last activity.
    """
    return jsonify(serializers.contact_profile(contacts.get_contact_profile(contact_id)))


@bp.patch("/contactos/<id:contact_id>")
@documented(
    "updateContact",
    tag="actions",
    security=API_AUTH,
    path=CONTACT_ID,
    responses={
        200: json_response("The profile after the change.", ContactProfile),
        400: INVALID_BODY,
        404: NO_CONTACT,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("updateContact")
def update_contact(contact_id: int, json: ContactPatch) -> Any:
    """Edit the team's fields of a contact

    Any of `display_name` (null clears it: WhatsApp's profile name shows again), `notes` (at
    most 10,000 characters; null or empty clears them) and `attributes` (replaces them all: at
    most 30 keys of at most 64 characters, values of at most 1,000). All or nothing: a bad
    field changes nothing. WhatsApp's `profile_name` is never changed here, and webhooks never
    change these fields.
    """
    given = json.model_fields_set
    contacts.update_contact(
        contact_id,
        contacts.ContactChanges(
            display_name=json.display_name,
            display_name_given="display_name" in given,
            notes=json.notes,
            notes_given="notes" in given,
            attributes=json.attributes if "attributes" in given else None,
        ),
    )
    return jsonify(serializers.contact_profile(contacts.get_contact_profile(contact_id)))
