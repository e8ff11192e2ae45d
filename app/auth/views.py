"""Login and logout for agents (Flask-Login sessions, CSRF-protected forms)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user

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
from app.services.agents import authenticate

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
        agent = authenticate(form.email.data or "", form.password.data or "")
        if agent is not None:
            login_user(agent)
            return redirect(safe_next(request.args.get("next")))
        flash(_("Wrong email or password, or the account is inactive."), "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


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

    Ends the session (a CSRF-protected form post) and redirects to `/login`.
    """
    logout_user()
    return redirect(url_for("auth.login"))
