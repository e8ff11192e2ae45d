"""Forms of the admin page (CSRF-protected by Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField

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
