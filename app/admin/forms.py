"""Forms of the admin page (CSRF-protected by Flask-WTF)."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField

# types-WTForms lags wtforms 3.3, where SelectChoice replaced (value, label) tuples.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, Length, Optional

ROLE_CHOICES = [SelectChoice("agent", _l("Agent")), SelectChoice("admin", _l("Administrator"))]


class CreateAgentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default="agent")
    password = PasswordField(
        _l("Password (leave empty to generate one)"), validators=[Optional(), Length(min=10, max=200)]
    )


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """Deactivate, reactivate, reset a password, sync templates: a button and the CSRF token."""


DAY_LABELS = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}


class HoursForm(FlaskForm):
    """The business hours on one page: a line of intervals per weekday ("09:00-14:00, 16:00-20:00"),
    holidays one per line; turned into the API's shape by `hours_body()`."""

    time_zone = StringField(_l("Time zone"), validators=[DataRequired(), Length(max=64)])
    mon = StringField(DAY_LABELS["mon"])
    tue = StringField(DAY_LABELS["tue"])
    wed = StringField(DAY_LABELS["wed"])
    thu = StringField(DAY_LABELS["thu"])
    fri = StringField(DAY_LABELS["fri"])
    sat = StringField(DAY_LABELS["sat"])
    sun = StringField(DAY_LABELS["sun"])
    holidays = TextAreaField(_l("Holidays (closed all day)"))
    enabled = BooleanField(_l("Business hours in force: send the away message while closed"))
    away_message = TextAreaField(_l("Away message"), validators=[Length(max=4096)])
    greeting_enabled = BooleanField(_l("Greet a customer's first message ever"))
    greeting_message = TextAreaField(_l("Greeting"), validators=[Length(max=4096)])


_INTERVAL = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*$")


def _pad(hhmm: str) -> str:
    return hhmm.zfill(5)


def day_intervals(line: str) -> list[list[str]]:
    """ "9:00-14:00, 16:00-20:00" as [["09:00", "14:00"], ["16:00", "20:00"]]; a part that is not
    an interval is passed on as it is, for the service to refuse by its place."""
    out: list[list[str]] = []
    for part in re.split(r"[,;]", line or ""):
        if not part.strip():
            continue
        match = _INTERVAL.match(part)
        out.append([_pad(match.group(1)), _pad(match.group(2))] if match else [part.strip(), ""])
    return out


def day_line(intervals: list[list[str]]) -> str:
    return ", ".join(f"{start}-{end}" for start, end in intervals)


def hours_body(form: HoursForm) -> dict[str, Any]:
    """The API's body (`PUT /whatsapp/api/horario`) of the page's form."""
    return {
        "time_zone": (form.time_zone.data or "").strip(),
        "week": {day: day_intervals(getattr(form, day).data or "") for day in DAY_LABELS},
        "holidays": [d for d in re.split(r"[\s,;]+", form.holidays.data or "") if d],
        "enabled": bool(form.enabled.data),
        "away_message": form.away_message.data or "",
        "greeting_enabled": bool(form.greeting_enabled.data),
        "greeting_message": form.greeting_message.data or "",
    }


def fill_hours_form(form: HoursForm, shape: dict[str, Any]) -> None:
    """Put the settings (the API's shape) into the form."""
    form.time_zone.data = shape["time_zone"]
    for day in DAY_LABELS:
        getattr(form, day).data = day_line(shape["week"][day])
    form.holidays.data = "\n".join(shape["holidays"])
    form.enabled.data = shape["enabled"]
    form.away_message.data = shape["away_message"]
    form.greeting_enabled.data = shape["greeting_enabled"]
    form.greeting_message.data = shape["greeting_message"]
