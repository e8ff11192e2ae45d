"""The WhatsApp Business inbox: application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, g
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from app.admin.views import bp as admin_bp
from app.api import actions as _action_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import contacts as _contact_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import hours as _hours_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import labels as _label_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import me as _me_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import media as _media_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import reactions as _reaction_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import reports as _reports_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import search as _search_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import sending as _sending_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import starting as _starting_routes  # noqa: F401  (its routes join the api blueprint)
from app.api import templates as _templates_routes  # noqa: F401  (its routes join the api blueprint)
from app.api.views import bp as api_bp
from app.auth.sessions import SessionCookies, forget_session, session_is_current
from app.auth.views import bp as auth_bp
from app.cache import init_cache
from app.cli import register as register_cli
from app.converters import init_converters
from app.embedded_db import embedded_server_url
from app.errors import register_error_handlers as register_errors
from app.extensions import babel, csrf, db, login_manager, migrate
from app.health import bp as health_bp
from app.i18n import select_locale, select_timezone
from app.inbox import contact_views as _contact_pages  # noqa: F401  (its routes join the inbox blueprint)
from app.inbox import live as _live_pages  # noqa: F401  (its route joins the inbox blueprint)
from app.inbox import report_views as _report_pages  # noqa: F401  (its routes join the inbox blueprint)
from app.inbox.assets import init_assets
from app.inbox.live import init_live
from app.inbox.polls import init_polls
from app.inbox.security import init_security_headers
from app.inbox.views import bp as inbox_bp
from app.json_provider import init_json
from app.metrics import init_metrics
from app.models import Agent
from app.observability import configure_logging
from app.pool_ping import install_idle_ping
from app.prepared import init_prepared
from app.ratelimits import init_rate_limits
from app.webhook.views import bp as webhook_bp
from config import load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(load_config())
    if overrides:
        app.config.update(overrides)
    trust_proxies(app)
    app.session_interface = SessionCookies()
    if not app.config.get("MEDIA_STORAGE_PATH"):
        app.config["MEDIA_STORAGE_PATH"] = str(Path(app.instance_path) / "media")
    init_converters(app)  # before any blueprint registers its routes
    init_json(app)
    configure_logging(app)
    configure_database(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind Render's proxy every connection comes from the proxy: take the client's address
    and scheme from the last TRUSTED_PROXY_HOPS entries it appends to X-Forwarded-For and sets in
    X-Forwarded-Proto. Entries a client wrote itself lie further left and are never used. The Host
    header is the public one already (Render passes it through), so X-Forwarded-Host is not trusted.
    """
    hops = int(app.config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]


def configure_database(app: Flask) -> None:
    if app.config.get("SQLALCHEMY_DATABASE_URI"):
        return
    app.config["SQLALCHEMY_DATABASE_URI"] = embedded_server_url(Path(app.instance_path) / "pg", "inbox")
    app.config["EMBEDDED_DATABASE"] = True


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        init_metrics(app, db.engine)
        if app.config.get("DB_POOL_PING_IDLE_SECONDS"):
            install_idle_ping(db.engine, app.config["DB_POOL_PING_IDLE_SECONDS"])
        if app.config.get("DB_PREPARED_STATEMENTS", True):
            init_prepared(db.engine)
    init_cache(app, Session)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    csrf.init_app(app)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "es")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(PROJECT_ROOT / "translations"))
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or "es")

    @login_manager.user_loader
    def load_agent(agent_id: str) -> Agent | None:
        if not agent_id.isdigit():
            return None
        agent = db.session.execute(
            select(Agent).where(Agent.id == int(agent_id), Agent.active.is_(True))
        ).scalar_one_or_none()
        if agent is None or not session_is_current(agent):
            forget_session()  # ended (logout elsewhere, reset, deactivation, role change) or expired
            return None
        g.agent_id = agent.id  # for the access log, without reloading the row later
        return agent


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(webhook_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(inbox_bp)
    app.register_blueprint(admin_bp)
    init_assets(app)
    init_security_headers(app)
    # Meta signs its POSTs (no browser session); API clients send a bearer token.
    csrf.exempt(webhook_bp)
    csrf.exempt(api_bp)
    init_live(app)
    init_polls(app)  # before the limiter: an unchanged poll is decided ahead of its check
    init_rate_limits(app, webhook=webhook_bp, api=api_bp, inbox=inbox_bp)


def register_error_handlers(app: Flask) -> None:
    register_errors(app)


def register_commands(app: Flask) -> None:
    register_cli(app)
