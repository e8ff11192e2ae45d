"""Login and logout for agents (Flask-Login sessions, CSRF-protected forms)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user

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
def login() -> ResponseReturnValue:
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
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    return redirect(url_for("auth.login"))
