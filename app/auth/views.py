"""Login and logout for agents (Flask-Login sessions, CSRF-protected forms)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from werkzeug.exceptions import TooManyRequests

from app.api.docs import (
    CSRF_FAILED_PAGE,
    LOCATION,
    PUBLIC,
    RATE_LIMITED_PAGE,
    SESSION,
    documented,
    empty,
    html,
    html_form,
    query,
)
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
@documented(
    "loginPage",
    method="GET",
    summary="The login form (HTML)",
    description="",
    tag="pages",
    security=PUBLIC,
    responses={200: html("The form.")},
)
@documented(
    "login",
    method="POST",
    tag="pages",
    security=PUBLIC,
    parameters=[query("next", {"type": "string"}, "Where to go after logging in; only local paths are followed.")],
    body=html_form({"email": {"type": "string"}, "password": {"type": "string"}}, required=["email", "password"]),
    responses={
        302: empty("Logged in; redirect to `next` or `/`.", headers={"Location": LOCATION}),
        400: html("The form is incomplete or its CSRF token is missing or stale."),
        401: html("Wrong email or password, or the agent is inactive; the form again."),
        429: RATE_LIMITED_PAGE,
    },
)
def login() -> ResponseReturnValue:
    """Log in an agent

    Checks the email and password of an active agent and starts a session (the
    `session` cookie), then redirects to `next` when it is a local path, else to `/`.
    """
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
@documented(
    "logout",
    tag="pages",
    security=SESSION,
    body=html_form(body_required=False),
    responses={
        302: empty("Logged out (or not logged in); redirect to the login page.", headers={"Location": LOCATION}),
        400: CSRF_FAILED_PAGE,
        429: RATE_LIMITED_PAGE,
    },
)
@login_required
def logout() -> ResponseReturnValue:
    """Log out

    Ends the agent's session and redirects to `/login`. A signed cookie cannot be revoked one by
    one, so this ends every copy of the cookie, and so every session of theirs (see README, Security).
    """
    return _end_sessions_and_log_out()


@bp.post("/logout/everywhere")
@documented(
    "logoutEverywhere",
    tag="pages",
    security=SESSION,
    body=html_form(body_required=False),
    responses={
        302: empty(
            "Every session of this agent ended (or not logged in); redirect to the login page.",
            headers={"Location": LOCATION},
        ),
        400: CSRF_FAILED_PAGE,
        429: RATE_LIMITED_PAGE,
    },
)
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """Log out everywhere

    Ends every session of the agent, in every browser and device (the account menu's button; a
    CSRF-protected form post), and redirects to `/login`.
    """
    return _end_sessions_and_log_out()
