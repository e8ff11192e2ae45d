"""Security headers under a real gunicorn: HSTS in production only, pages never stored by a
browser or a proxy (the admin's password reset shows the new password), while the hashed
assets stay cached for a year and the live fragments keep answering 304."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from app.services import agents as agent_service
from tests import meta
from tests.conftest import TEST_CONFIG
from tests.live import Gunicorn
from tests.test_pages import PASSWORD, csrf_token

pytestmark = pytest.mark.live

HSTS = "max-age=31536000; includeSubDomains"
ADMIN, OTHER = "admin-headers@example.com", "other-headers@example.com"


class Browser:
    """Requests with the session cookie sent by hand: in production the cookie is `Secure`,
    and a client keeps it from a plain-http server (gunicorn here has no TLS)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = requests.request(
            method, self.base_url + path, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )
        self.cookies.update({c.name: c.value for c in response.cookies if c.value})
        return response

    def login(self, email: str) -> None:
        page = self.request("GET", "/login")
        answer = self.request(
            "POST", "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
        )
        assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:300]


@pytest.fixture
def accounts(committed_db: str) -> Iterator[tuple[str, int]]:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    with app.app_context():
        agent_service.create_agent(ADMIN, "Admin", PASSWORD, role="admin")
        other = agent_service.create_agent(OTHER, "Otro", PASSWORD + " 2").id
        db.engine.dispose()
    yield committed_db, other


def _conversation(server: Gunicorn, database_url: str) -> int:
    assert server.post_webhook(meta.encode(meta.delivery(meta.value(messages=[meta.message()])))).status_code == 200
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT id FROM conversations")).scalar_one()
    finally:
        engine.dispose()


def test_production_sends_hsts_and_pages_are_not_stored_but_assets_and_fragments_cache(accounts):
    database_url, other_id = accounts
    with Gunicorn(database_url, env={"APP_ENV": "production", "LOG_LEVEL": "WARNING"}) as server:
        browser = Browser(server.base_url)
        login = browser.request("GET", "/login")
        assert login.status_code == 200
        assert login.headers["Strict-Transport-Security"] == HSTS
        assert login.headers["Cache-Control"] == "no-store"
        assert requests.get(server.base_url + "/healthz", timeout=30).headers["Strict-Transport-Security"] == HSTS

        browser.login(ADMIN)
        conversation_id = _conversation(server, database_url)
        inbox = browser.request("GET", f"/?c={conversation_id}")
        assert inbox.status_code == 200 and inbox.headers["Cache-Control"] == "no-store"
        assert inbox.headers["Strict-Transport-Security"] == HSTS

        asset = re.search(r'(/assets/[0-9a-f]{12}/[^"]+\.css)"', inbox.text)
        assert asset, "the page links no hashed stylesheet"
        css = browser.request("GET", asset.group(1))
        assert css.status_code == 200 and css.headers["Cache-Control"] == "public, max-age=31536000, immutable"

        fragment = f"/inbox/fragments/conversations/{conversation_id}"
        first = browser.request("GET", fragment)
        assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
        again = browser.request("GET", fragment, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["Cache-Control"] == "private, no-cache"

        admin = browser.request("GET", "/admin/")
        assert admin.status_code == 200 and admin.headers["Cache-Control"] == "no-store"
        reset = browser.request(
            "POST", f"/admin/agents/{other_id}/password", data={"csrf_token": csrf_token(admin.text)}
        )
        assert reset.status_code == 200 and reset.headers["Cache-Control"] == "no-store"
        assert reset.headers["Strict-Transport-Security"] == HSTS


def test_development_sends_no_hsts_that_would_lock_the_browser_out_of_http(accounts):
    database_url, _ = accounts
    with Gunicorn(database_url, env={"LOG_LEVEL": "WARNING"}) as server:
        browser = Browser(server.base_url)
        login = browser.request("GET", "/login")
        assert login.status_code == 200 and "Strict-Transport-Security" not in login.headers
        assert login.headers["Cache-Control"] == "no-store"
        browser.login(ADMIN)
        inbox = browser.request("GET", "/")
        assert inbox.status_code == 200 and "Strict-Transport-Security" not in inbox.headers
