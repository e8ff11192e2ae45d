"""Login and logout for agents (Flask-Login sessions, CSRF-protected forms)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from werkzeug.exceptions import TooManyRequests

from app.auth.forms import LoginForm
from app.auth.sessions import start_session
from app.models import Agent
from app.ratelimits import LoginThrottle
from app.services.agents import authenticate
from app.services.sessions import end_all_sessions

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("inbox.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        throttle = LoginThrottle.for_request(email)
        wait = throttle.retry_after()
        if wait is not None:  # refused before the password is checked: no hash, no hint
            raise TooManyRequests(_("Too many failed logins; try again later."), retry_after=wait)
        agent = authenticate(email, form.password.data or "")
        if agent is not None:
            throttle.succeeded()
            start_session(agent)
            return redirect(safe_next(request.args.get("next")))
        throttle.failed()
        flash(_("Wrong email or password, or the account is inactive."), "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


def _end_sessions_and_log_out() -> ResponseReturnValue:
    agent: Agent = current_user._get_current_object()
    end_all_sessions(agent)
    logout_user()
    return redirect(url_for("auth.login"))


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Ends the agent's session — every copy of the cookie, and so every session of theirs:
    a signed cookie cannot be revoked one by one (see README, Security)."""
    return _end_sessions_and_log_out()


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """Log out everywhere: every browser and device where the agent is logged in."""
    return _end_sessions_and_log_out()
