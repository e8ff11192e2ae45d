"""The admin page: agents (list, create, deactivate, reactivate, reset a password, change
role), labels (create, rename, recolour, delete) and the template sync. Admins only; every
change is a CSRF-checked POST."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app.admin.forms import (
    DAY_LABELS,
    ROLE_CHOICES,
    ActionForm,
    CreateAgentForm,
    HoursForm,
    RoleForm,
    fill_hours_form,
    hours_body,
)
from app.api.docs import (
    BACK_TO_ADMIN,
    CSRF_FAILED_PAGE,
    LOCATION,
    LOGIN_REDIRECT,
    NOT_ADMIN,
    SESSION,
    documented,
    empty,
    html,
    html_form,
)
from app.extensions import db
from app.models import Agent, MessageTemplate
from app.services import agents as agent_service
from app.services import business_hours as hours_service
from app.services import labels as label_service
from app.services import templates as template_service
from app.services.errors import DomainError
from app.whatsapp.business_hours import is_open, next_opening, zone_names

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _agent_or_404(agent_id: int) -> Agent:
    agent = agent_service.get_agent(agent_id)
    if agent is None:
        abort(404)
    return agent


def _page(create_form: CreateAgentForm | None = None, status: int = 200, **extra: Any) -> ResponseReturnValue:
    templates = db.session.execute(
        select(
            func.count(), func.count().filter(MessageTemplate.status == "APPROVED"), func.max(MessageTemplate.synced_at)
        )
    ).one()
    return (
        render_template(
            "admin/index.html",
            agents=agent_service.list_agents(),
            create_form=create_form or CreateAgentForm(),
            role_choices=ROLE_CHOICES,
            action_form=ActionForm(),
            templates_total=templates[0],
            templates_approved=templates[1],
            templates_synced_at=templates[2].isoformat() if templates[2] else None,
            labels=label_service.list_labels(),
            **extra,
        ),
        status,
    )


@bp.get("/")
@documented(
    "adminPage",
    tag="pages",
    security=SESSION,
    responses={200: html("The page."), 302: LOGIN_REDIRECT, 403: NOT_ADMIN},
)
@admin_required
def index() -> ResponseReturnValue:
    """The admin page (HTML, admins only): agents and the template sync"""
    return _page()


@bp.post("/agents")
@documented(
    "adminCreateAgent",
    tag="pages",
    security=SESSION,
    body=html_form(
        {
            "name": {"type": "string"},
            "email": {"type": "string"},
            "role": {"type": "string", "enum": ["agent", "admin"]},
            "password": {"type": "string", "description": "At least 10 characters; empty to generate one."},
        },
        required=["name", "email", "role"],
    ),
    responses={
        200: html("Created; the page shows the generated password once."),
        302: empty("Created with the password given.", headers={"Location": LOCATION}),
        400: html("Invalid form, duplicate email or missing CSRF token."),
        403: NOT_ADMIN,
    },
)
@admin_required
def create_agent() -> ResponseReturnValue:
    """Create an agent (a generated password is shown once, in the answer)"""
    form = CreateAgentForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    password = form.password.data or secrets.token_urlsafe(12)
    try:
        agent = agent_service.create_agent(form.email.data or "", form.name.data or "", password, role=form.role.data)
    except DomainError as error:
        form.email.errors = [*form.email.errors, _agent_error(error)]
        return _page(form, 400)
    if not form.password.data:
        # A generated password is shown once, in this answer only.
        return _page(shown_password=(agent, password), created=True)
    flash(_("Agent %(name)s created.", name=agent.name), "success")
    return redirect(url_for("admin.index"))


def _agent_error(error: DomainError) -> str:
    """The service's reason, in the page's language, chosen by the error's code."""
    if error.code == "email_taken":
        return _("An agent with this email already exists.")
    if error.code == "invalid_email":
        return _("This is not an email address.")
    if error.code == "last_admin":
        return _("There must always be at least one active admin.")
    if error.code == "password_too_short":
        return _("The password must have at least 10 characters.")
    if error.code == "invalid_name":
        return _("The name must not contain NUL characters.")
    if error.code == "invalid_role":
        return _("This role does not exist.")
    return _("The change could not be made.")


def _sync_error(error: DomainError) -> str:
    """Why the template sync could not run, in the page's language, chosen by the error's code."""
    if error.code == "not_configured":
        return _("%(setting)s is not set.", setting=error.extra.get("setting", ""))
    return _("WhatsApp did not list the templates.")


@bp.post("/agents/<id:agent_id>/role")
@documented(
    "adminChangeRole",
    tag="pages",
    security=SESSION,
    body=html_form({"role": {"type": "string", "enum": ["agent", "admin"]}}, required=["role"]),
    responses={302: BACK_TO_ADMIN, 400: CSRF_FAILED_PAGE, 403: NOT_ADMIN, 404: html("No such agent.")},
)
@admin_required
def change_role(agent_id: int) -> ResponseReturnValue:
    """Change an agent's role (the last active admin stays admin)"""
    agent = _agent_or_404(agent_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        agent_service.set_role(agent, form.role.data)
    except DomainError as error:
        flash(_agent_error(error), "error")
    else:
        role = next(str(c.label) for c in ROLE_CHOICES if c.value == form.role.data)
        flash(_("%(name)s is now %(role)s.", name=agent.name, role=role), "success")
    return redirect(url_for("admin.index"))


@bp.post("/agents/<id:agent_id>/deactivate")
@documented(
    "adminDeactivateAgent",
    tag="pages",
    security=SESSION,
    body=html_form(),
    responses={302: BACK_TO_ADMIN, 400: CSRF_FAILED_PAGE, 403: NOT_ADMIN, 404: html("No such agent.")},
)
@admin_required
def deactivate(agent_id: int) -> ResponseReturnValue:
    """Deactivate an agent (tokens revoked; not oneself, not the last admin)"""
    return _set_active(agent_id, False)


@bp.post("/agents/<id:agent_id>/activate")
@documented(
    "adminActivateAgent",
    tag="pages",
    security=SESSION,
    body=html_form(),
    responses={302: BACK_TO_ADMIN, 400: CSRF_FAILED_PAGE, 403: NOT_ADMIN, 404: html("No such agent.")},
)
@admin_required
def activate(agent_id: int) -> ResponseReturnValue:
    """Let a deactivated agent log in again"""
    return _set_active(agent_id, True)


def _set_active(agent_id: int, active: bool) -> ResponseReturnValue:
    agent = _agent_or_404(agent_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if not active and agent.id == current_user.id:
        flash(_("You cannot deactivate your own account."), "error")
        return redirect(url_for("admin.index"))
    try:
        agent_service.set_active(agent, active)
    except DomainError as error:
        flash(_agent_error(error), "error")
    else:
        if active:
            flash(_("%(name)s can log in again.", name=agent.name), "success")
        else:
            flash(_("%(name)s can no longer log in.", name=agent.name), "success")
    return redirect(url_for("admin.index"))


@bp.post("/agents/<id:agent_id>/password")
@documented(
    "adminResetPassword",
    tag="pages",
    security=SESSION,
    body=html_form(),
    responses={
        200: html("The admin page with the new password."),
        400: CSRF_FAILED_PAGE,
        403: NOT_ADMIN,
        404: html("No such agent."),
    },
)
@admin_required
def reset_password(agent_id: int) -> ResponseReturnValue:
    """Give an agent a new generated password, shown once in the answer"""
    agent = _agent_or_404(agent_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    # Shown once in this answer; never put in a flash (the session cookie is signed, not encrypted).
    return _page(shown_password=(agent, agent_service.reset_password(agent)))


@bp.post("/templates/sync")
@documented(
    "adminSyncTemplates",
    tag="pages",
    security=SESSION,
    body=html_form(),
    responses={
        302: empty(
            "Synced, or the reason it could not be, as a message on the admin page.", headers={"Location": LOCATION}
        ),
        400: CSRF_FAILED_PAGE,
        403: NOT_ADMIN,
    },
)
@admin_required
def sync_templates() -> ResponseReturnValue:
    """Sync the message templates from WhatsApp (as `flask templates sync`)"""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        result = template_service.sync_templates()
    except DomainError as error:
        flash(_("The templates could not be synced: %(reason)s", reason=_sync_error(error)), "error")
    else:
        flash(
            _(
                "Templates synced: %(added)s added, %(updated)s updated, %(removed)s removed, %(unchanged)s unchanged.",
                added=result.added,
                updated=result.updated,
                removed=result.removed,
                unchanged=result.unchanged,
            ),
            "success",
        )
    return redirect(url_for("admin.index"))


# --- labels -----------------------------------------------------------------------------------

LABEL_FORM = html_form(
    {
        "name": {"type": "string", "description": "1–40 characters, unique whatever the case."},
        "color": {"type": "string", "description": "`#rrggbb`."},
    },
    required=["name", "color"],
)


def _label_error(error: DomainError) -> str:
    """Why a label could not be saved, in the page's language, chosen by the error's code."""
    if error.code == "duplicate_label_name":
        return _("A label with this name already exists.")
    if error.code == "invalid_label_name":
        return _("The label's name must have 1 to 40 characters.")
    if error.code == "invalid_color":
        return _("The colour must be written as #rrggbb.")
    if error.code == "not_found":
        return _("That label no longer exists.")
    return _("The change could not be made.")


@bp.post("/labels")
@documented(
    "adminCreateLabel",
    tag="pages",
    security=SESSION,
    body=LABEL_FORM,
    responses={302: BACK_TO_ADMIN, 400: CSRF_FAILED_PAGE, 403: NOT_ADMIN},
)
@admin_required
def create_label() -> ResponseReturnValue:
    """Define a label (as POST /whatsapp/api/etiquetas)"""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        label = label_service.create_label(current_user, request.form.get("name", ""), request.form.get("color", ""))
    except DomainError as error:
        flash(_label_error(error), "error")
    else:
        flash(_("Label %(name)s created.", name=label.name), "success")
    return redirect(url_for("admin.index", _anchor="labels-title"))


@bp.post("/labels/<id:label_id>")
@documented(
    "adminUpdateLabel",
    tag="pages",
    security=SESSION,
    body=LABEL_FORM,
    responses={302: BACK_TO_ADMIN, 400: CSRF_FAILED_PAGE, 403: NOT_ADMIN, 404: html("An impossible label id.")},
)
@admin_required
def update_label(label_id: int) -> ResponseReturnValue:
    """Rename or recolour a label (as PATCH /whatsapp/api/etiquetas/{id})"""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        label = label_service.update_label(
            current_user, label_id, name=request.form.get("name", ""), color=request.form.get("color", "")
        )
    except DomainError as error:
        flash(_label_error(error), "error")
    else:
        flash(_("Label %(name)s saved.", name=label.name), "success")
    return redirect(url_for("admin.index", _anchor="labels-title"))


@bp.post("/labels/<id:label_id>/delete")
@documented(
    "adminDeleteLabel",
    tag="pages",
    security=SESSION,
    body=html_form(),
    responses={302: BACK_TO_ADMIN, 400: CSRF_FAILED_PAGE, 403: NOT_ADMIN, 404: html("An impossible label id.")},
)
@admin_required
def delete_label(label_id: int) -> ResponseReturnValue:
    """Remove a label from the inbox and every conversation (as DELETE /whatsapp/api/etiquetas/{id})"""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        label_service.delete_label(current_user, label_id)
    except DomainError as error:
        flash(_label_error(error), "error")
    else:
        flash(_("Label removed."), "success")
    return redirect(url_for("admin.index", _anchor="labels-title"))


# --- business hours ------------------------------------------------------------------------------


def _hours_error(field: str) -> tuple[str, str]:
    """The form field a refusal names (`week.mon[1]` → `mon`) and the reason in the page's
    language, chosen by the field."""
    if field.startswith("week."):
        day = field.removeprefix("week.").split("[")[0].split(".")[0]
        if day in DAY_LABELS:
            return day, _(
                "Write the hours like 09:00-14:00, 16:00-20:00: in order, not overlapping, each ending after it "
                "starts (24:00 ends the day). Leave it empty when closed all day."
            )
    if field.startswith("holidays"):
        return "holidays", _("Write each holiday as a date like 2026-12-25, one per line.")
    if field == "time_zone":
        return "time_zone", _("Choose a time zone from the list, such as Europe/Madrid.")
    if field == "away_message":
        return "away_message", _("Write the away message (it cannot be empty while the business hours are in force).")
    if field == "greeting_message":
        return "greeting_message", _("Write the greeting (it cannot be empty while greeting is on).")
    return "time_zone", _("The change could not be made.")


def _in_business_zone(at: datetime | None, settings: hours_service.HoursSettings) -> str | None:
    """An instant as the business's own clock shows it, e.g. "2026-12-03 09:00 (Europe/Madrid)"."""
    if at is None:
        return None
    return f"{at.astimezone(settings.schedule.zone):%Y-%m-%d %H:%M} ({settings.schedule.time_zone})"


def _hours_page(form: HoursForm, settings: hours_service.HoursSettings, status: int = 200) -> ResponseReturnValue:
    now = datetime.now(UTC)
    return (
        render_template(
            "admin/hours.html",
            form=form,
            days=list(DAY_LABELS),
            zones=zone_names(),
            open_now=is_open(settings.schedule, now),
            enabled=settings.schedule.enabled,
            next_opening=_in_business_zone(next_opening(settings.schedule, now), settings),
            updated_at=settings.updated_at,
        ),
        status,
    )


@bp.get("/horario")
@documented(
    "adminHoursPage",
    tag="pages",
    security=SESSION,
    responses={200: html("The page."), 302: LOGIN_REDIRECT, 403: NOT_ADMIN},
)
@admin_required
def hours() -> ResponseReturnValue:
    """The business hours page (HTML, admins only): opening hours, holidays, away message, greeting"""
    settings = hours_service.get_settings()
    form = HoursForm(formdata=None)
    fill_hours_form(form, settings.to_dict())
    return _hours_page(form, settings)


@bp.post("/horario")
@documented(
    "adminSaveHours",
    tag="pages",
    security=SESSION,
    body=html_form(
        {
            "time_zone": {"type": "string"},
            **{day: {"type": "string", "description": "e.g. 09:00-14:00, 16:00-20:00"} for day in DAY_LABELS},
            "holidays": {"type": "string", "description": "YYYY-MM-DD dates, one per line"},
            "enabled": {"type": "string", "enum": ["y"]},
            "away_message": {"type": "string"},
            "greeting_enabled": {"type": "string", "enum": ["y"]},
            "greeting_message": {"type": "string"},
        },
        required=["time_zone"],
    ),
    responses={
        302: empty("Saved; back to the page with a message.", headers={"Location": LOCATION}),
        400: html("A wrong value (the page shows which, nothing is saved) or a missing CSRF token."),
        403: NOT_ADMIN,
    },
)
@admin_required
def save_hours() -> ResponseReturnValue:
    """Save the business hours (as `PUT /whatsapp/api/horario`)"""
    form = HoursForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _hours_page(form, hours_service.get_settings(), 400)
    try:
        hours_service.update_settings(hours_body(form), current_user)
    except DomainError as error:
        name, reason = _hours_error(str(getattr(error, "field", "") or ""))
        field = getattr(form, name)
        field.errors = [*field.errors, reason]
        return _hours_page(form, hours_service.get_settings(), 400)
    flash(_("Business hours saved."), "success")
    return redirect(url_for("admin.hours"))
