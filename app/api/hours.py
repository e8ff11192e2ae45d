"""Business hours and the automatic replies' texts: read by every agent, changed by admins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import jsonify

from app.api.docs import API_AUTH, API_ERRORS, INVALID_BODY, documented, error_answer, json_response
from app.api.guards import api_auth_required, current_agent
from app.api.responses import BusinessHoursSettings
from app.api.schemas import BusinessHoursRequest
from app.api.validation import accepts
from app.api.views import bp
from app.services import business_hours
from app.whatsapp.business_hours import is_open, next_opening


def _body(settings: business_hours.HoursSettings) -> dict[str, Any]:
    now = datetime.now(UTC)
    opening = next_opening(settings.schedule, now)
    return {
        **settings.to_dict(),
        "open_now": is_open(settings.schedule, now),
        "next_opening": opening.isoformat().replace("+00:00", "Z") if opening else None,
    }


def _admins_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """The role is checked before the body: a non-admin learns nothing about the input."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        business_hours.check_may_change(current_agent())
        return view(*args, **kwargs)

    return wrapper


@bp.get("/horario")
@documented(
    "getBusinessHours",
    tag="settings",
    security=API_AUTH,
    responses={
        200: json_response("The settings in force (the defaults, switched off, until saved).", BusinessHoursSettings),
        **API_ERRORS,
    },
)
@api_auth_required
def get_business_hours() -> Any:
    """Business hours and automatic replies

    The weekly opening hours in the business time zone, the holidays, the away message (sent
    once per closed period per conversation to a customer who writes while closed) and the
    optional greeting (a customer's first message ever), plus whether it is open now.
    """
    return jsonify(_body(business_hours.get_settings()))


@bp.put("/horario")
@documented(
    "updateBusinessHours",
    tag="settings",
    security=API_AUTH,
    responses={
        200: json_response("The settings as saved.", BusinessHoursSettings),
        400: INVALID_BODY,
        403: error_answer("forbidden", "Only an admin can change the business hours."),
        **API_ERRORS,
    },
)
@api_auth_required
@_admins_only
@accepts("updateBusinessHours")
def update_business_hours(json: BusinessHoursRequest) -> Any:
    """Change the business hours and automatic replies (admins)

    Replaces the whole settings. Times are `"HH:MM"` in `time_zone`; within a day the
    intervals are sorted and do not overlap, each ends after it starts; `"24:00"` may end a
    day. A wrong value answers 400 `invalid_body` naming the field (`message`), and nothing
    changes. The away message applies to customer messages whose WhatsApp timestamp falls in a
    closed period (holidays are closed all day).
    """
    return jsonify(_body(business_hours.update_settings(json.model_dump(), current_agent())))
