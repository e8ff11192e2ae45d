"""The contact panel of the inbox (HTML fragment): the profile an agent opens from the thread
header and edits in place (the edits go through the JSON API, `PATCH /whatsapp/api/contactos/<id>`)."""

from __future__ import annotations

from flask import abort, render_template
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.api import serializers
from app.api.docs import FRAGMENT, LOGIN_REDIRECT, RATE_LIMITED_PAGE, SESSION, documented, html
from app.inbox.views import bp
from app.services.contacts import get_contact_profile
from app.services.errors import NotFound


@bp.get("/inbox/fragments/contacts/<id:contact_id>")
@documented(
    "inboxContactFragment",
    tag="pages",
    security=SESSION,
    path={"contact_id": "The contact's id. Unknown ids answer 404."},
    responses={200: FRAGMENT, 302: LOGIN_REDIRECT, 404: html("No such contact."), 429: RATE_LIMITED_PAGE},
)
@login_required
def contact_fragment(contact_id: int) -> ResponseReturnValue:
    """A contact's profile for the side panel (HTML fragment)

    The team's name, notes and attributes as an editable form, WhatsApp's name and number,
    and every conversation with the contact (status, last activity), rendered from the same
    serializer as `GET /whatsapp/api/contactos/<id>`.
    """
    try:
        profile = get_contact_profile(contact_id)
    except NotFound:
        abort(404)
    response = render_template("inbox/_contact.html", profile=serializers.contact_profile(profile))
    return response, 200, {"Cache-Control": "no-store"}
