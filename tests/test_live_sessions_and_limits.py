"""Issue 10, items 1–3, over HTTP against a real gunicorn (behind a simulated Render proxy).

1. A session cookie copied before logout, a password reset, a deactivation or a role change no
   longer works afterwards; "log out everywhere" ends every other browser's session.
2. With TRUSTED_PROXY_HOPS=1 the client address is the one Render's proxy appends to
   X-Forwarded-For: an attacker elsewhere cannot lock the team, or one agent, out of logging in.
3. API limits are keyed on the parsed token, and failed authentications have a budget per address.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from app import create_app
from app.extensions import db
from app.services import agents as agent_service
from tests.conftest import TEST_CONFIG
from tests.live import Gunicorn
from tests.test_pages import PASSWORD, csrf_token
from tests.test_security_headers import Browser

pytestmark = pytest.mark.live

ADMIN, AGENT = "admin-sessions@example.com", "agent-sessions@example.com"
API = "/whatsapp/api/conversaciones"
# What Render's proxy appends to X-Forwarded-For: the address the connection came from.
ATTACKER, VICTIM = "203.0.113.9", "198.51.100.7"


class ProxiedBrowser(Browser):
    """A browser whose requests reach gunicorn through "Render's proxy" from `address`."""

    def __init__(self, base_url: str, address: str) -> None:
        super().__init__(base_url)
        self.address = address

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        headers.setdefault("X-Forwarded-For", self.address)
        return super().request(method, path, headers=headers, **kwargs)

    def try_login(self, email: str, password: str) -> requests.Response:
        page = self.request("GET", "/login")
        return self.request(
            "POST", "/login", data={"email": email, "password": password, "csrf_token": csrf_token(page.text)}
        )


@pytest.fixture
def accounts(committed_db: str) -> Iterator[tuple[str, int, str]]:
    """An admin and an agent (both with PASSWORD), and an API token of the agent's."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    with app.app_context():
        agent_service.create_agent(ADMIN, "Admin", PASSWORD, role="admin")
        agent_id = agent_service.create_agent(AGENT, "Agente", PASSWORD).id
        token = agent_service.create_token(AGENT)
        db.engine.dispose()
    yield committed_db, agent_id, token


def _new_token(database_url: str) -> str:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        token = agent_service.create_token(AGENT)
        db.engine.dispose()
    return token


def _copy(browser: Browser) -> Browser:
    """Another client holding a copy of the browser's cookies (a stolen or leftover session)."""
    copy = Browser(browser.base_url)
    copy.cookies = dict(browser.cookies)
    return copy


def _logged_out(copy: Browser) -> bool:
    page = copy.request("GET", "/")
    api = copy.request("GET", API)
    return page.status_code == 302 and page.headers["Location"].startswith("/login") and api.status_code == 401


def _works(copy: Browser) -> bool:
    return copy.request("GET", "/").status_code == 200 and copy.request("GET", API).status_code == 200


def _admin_post(admin: Browser, path: str, **data: str) -> None:
    page = admin.request("GET", "/admin/")
    answer = admin.request("POST", path, data={"csrf_token": csrf_token(page.text), **data})
    assert answer.status_code in (200, 302), answer.text[:300]


# --- 1. sessions end ----------------------------------------------------------------------------


def test_a_copied_session_cookie_stops_working_after_logout_reset_deactivation_and_role_change(accounts):
    database_url, agent_id, _ = accounts
    with Gunicorn(database_url, workers=1, env={"LOG_LEVEL": "WARNING"}) as server:
        admin = Browser(server.base_url)
        admin.login(ADMIN)

        agent = Browser(server.base_url)
        agent.login(AGENT)
        copy = _copy(agent)
        assert _works(copy)
        inbox = agent.request("GET", "/")
        assert agent.request("POST", "/logout", data={"csrf_token": csrf_token(inbox.text)}).status_code == 302
        assert _logged_out(copy), "a cookie copied before logout still works after it"

        agent.login(AGENT)
        copy = _copy(agent)
        _admin_post(admin, f"/admin/agents/{agent_id}/deactivate")
        _admin_post(admin, f"/admin/agents/{agent_id}/activate")
        assert _logged_out(copy), "a cookie survives deactivation and reactivation"

        agent.login(AGENT)
        copy = _copy(agent)
        _admin_post(admin, f"/admin/agents/{agent_id}/role", role="admin")
        assert _logged_out(copy), "a cookie survives a role change"

        agent.login(AGENT)
        copy = _copy(agent)
        token = _new_token(database_url)  # deactivation revoked the first one
        assert requests.get(server.base_url + API, headers={"Authorization": f"Bearer {token}"}, timeout=30).ok
        _admin_post(admin, f"/admin/agents/{agent_id}/password")
        assert _logged_out(copy), "a cookie survives a password reset"
        revoked = requests.get(server.base_url + API, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert revoked.status_code == 401, "a password reset leaves the agent's API tokens working"
        assert _works(admin)  # the admin's own session is untouched


def test_log_out_everywhere_ends_the_sessions_of_every_browser(accounts):
    database_url, _, _ = accounts
    with Gunicorn(database_url, workers=1, env={"LOG_LEVEL": "WARNING"}) as server:
        laptop, phone = Browser(server.base_url), Browser(server.base_url)
        laptop.login(AGENT)
        phone.login(AGENT)
        inbox = laptop.request("GET", "/")
        assert 'action="/logout/everywhere"' in inbox.text, "the account menu offers no 'log out everywhere'"
        answer = laptop.request("POST", "/logout/everywhere", data={"csrf_token": csrf_token(inbox.text)})
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
        assert _logged_out(phone) and _logged_out(laptop)
        phone.login(AGENT)  # logging in again works
        assert _works(phone)


# --- 2. client addresses behind Render's proxy --------------------------------------------------


@pytest.fixture
def proxied_server(accounts: tuple[str, int, str]) -> Iterator[Gunicorn]:
    database_url, _, _ = accounts
    env = {"TRUSTED_PROXY_HOPS": "1", "LOG_LEVEL": "WARNING"}
    with Gunicorn(database_url, workers=1, env=env) as server:
        yield server


def test_failed_logins_with_random_emails_from_one_address_do_not_lock_out_the_team(proxied_server):
    attacker = ProxiedBrowser(proxied_server.base_url, ATTACKER)
    statuses = [attacker.try_login(f"{uuid.uuid4().hex}@example.com", "wrong password!").status_code for _ in range(31)]
    assert statuses[:30] == [401] * 30 and statuses[30] == 429  # the attacker's address is throttled
    agent = ProxiedBrowser(proxied_server.base_url, VICTIM)
    answer = agent.try_login(AGENT, PASSWORD)
    assert answer.status_code == 302, f"an agent elsewhere is locked out: {answer.status_code}"


def test_wrong_passwords_for_an_account_from_elsewhere_do_not_lock_the_agent_out(proxied_server):
    attacker = ProxiedBrowser(proxied_server.base_url, ATTACKER)
    statuses = [attacker.try_login(AGENT, "wrong password!").status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    # Render appends the real peer: a forged X-Forwarded-For entry in front of it changes nothing.
    forged = attacker.try_login(AGENT, "wrong password!")
    assert forged.status_code == 429
    spoofing = ProxiedBrowser(proxied_server.base_url, f"{VICTIM}, {ATTACKER}")
    assert spoofing.try_login(AGENT, PASSWORD).status_code == 429
    agent = ProxiedBrowser(proxied_server.base_url, VICTIM)
    answer = agent.try_login(AGENT, PASSWORD)
    assert answer.status_code == 302, f"the agent is locked out by failures from elsewhere: {answer.status_code}"


def test_without_trusted_hops_x_forwarded_for_is_ignored(accounts):
    database_url, _, _ = accounts
    with Gunicorn(database_url, workers=1, env={"LOG_LEVEL": "WARNING", "TRUSTED_PROXY_HOPS": "0"}) as server:
        for n in range(5):
            assert ProxiedBrowser(server.base_url, f"192.0.2.{n}").try_login(AGENT, "nope nope!").status_code == 401
        # Five different forged addresses are still one client: its failures for the account add up.
        assert ProxiedBrowser(server.base_url, "192.0.2.99").try_login(AGENT, PASSWORD).status_code == 429


# --- 3. API limits ------------------------------------------------------------------------------


def test_api_limit_is_keyed_on_the_parsed_token_and_failed_authentications_are_budgeted(accounts):
    database_url, _, token = accounts
    env = {
        "TRUSTED_PROXY_HOPS": "1",
        "RATELIMIT_API": "6 per minute",
        "RATELIMIT_API_AUTH_FAILURES": "10 per minute",
        "LOG_LEVEL": "WARNING",
    }
    with Gunicorn(database_url, workers=1, env=env) as server:

        def get(authorization: str, address: str = VICTIM) -> int:
            headers = {"Authorization": authorization, "X-Forwarded-For": address}
            return requests.get(server.base_url + API, headers=headers, timeout=30).status_code

        spellings = [f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer  {token}"]
        statuses = [get(spellings[i % 4]) for i in range(7)]
        assert statuses == [200] * 6 + [429], f"each spelling of one token got its own budget: {statuses}"

        bogus = [get(f"Bearer wai_{uuid.uuid4().hex}", ATTACKER) for _ in range(11)]
        assert bogus == [401] * 10 + [429], f"bogus tokens are never limited: {bogus}"
        assert get(f"Bearer wai_{uuid.uuid4().hex}", "192.0.2.50") == 401  # another address has its own budget
        retry = requests.get(
            server.base_url + API,
            headers={"Authorization": "Bearer nope", "X-Forwarded-For": ATTACKER},
            timeout=30,
        )
        assert retry.status_code == 429 and re.fullmatch(r"\d+", retry.headers["Retry-After"])
