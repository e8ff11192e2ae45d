"""Login, logout and the server-rendered inbox (with CSRF on, as in production)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from app.services import agents as agent_service
from tests import meta
from tests.conftest import PROJECT_ROOT

PASSWORD = "correct horse battery"


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD, next_url: str | None = None):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": csrf_token(page.text)})


def test_pages_require_login_and_redirect_back(client):
    response = client.get("/?tab=mine")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_lands_on_the_inbox_and_logout_needs_a_csrf_post(client, agent):
    response = login(client, "ANA@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    inbox = client.get("/").text
    assert client.post("/logout", data={"csrf_token": csrf_token(inbox)}).status_code == 302
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(client, agent):
    response = client.post("/login", data={"email": agent.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_next_redirects_only_to_local_paths(client, agent, target):
    response = login(client, agent.email, next_url=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_next_keeps_a_local_path(client, agent):
    response = login(client, agent.email, next_url="/?tab=mine")
    assert response.headers["Location"] == "/?tab=mine"


def test_wrong_password_and_inactive_agents_cannot_log_in(client, agent):
    response = login(client, agent.email, "wrong password!")
    assert response.status_code == 401 and "incorrectos" in response.text
    agent_service.deactivate_agent(agent.email)
    assert login(client, agent.email).status_code == 401


def test_session_cookie_is_httponly_and_samesite_lax(client, agent):
    response = login(client, agent.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_inbox_lists_conversations_escaped_and_opens_a_thread(client, agent, post_webhook):
    hostile = "<img src=x onerror=alert(1)>"
    msg = meta.message(content={"body": f"hola {hostile}"})
    post_webhook(meta.delivery(meta.value(messages=[msg], contacts=[meta.contact(name=hostile)])))
    login(client, agent.email)
    page = client.get("/")
    assert page.status_code == 200
    assert hostile not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    conversation_id = int(re.search(r"c=(\d+)", page.text).group(1))
    thread = client.get(f"/?c={conversation_id}")
    assert thread.status_code == 200
    assert "hola &lt;img" in thread.text and hostile not in thread.text
    assert client.get("/?c=999999").status_code == 404


# One request per test: the test's app context (and Flask-Babel's cached locale) spans requests.
def test_pages_are_spanish_by_default(client):
    page = client.get("/login").text
    assert '<html lang="es">' in page and "Iniciar sesión" in page


def test_pages_are_english_when_the_browser_asks(client):
    english = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert '<html lang="en">' in english and "Log in" in english


def test_spanish_catalogue_translates_every_string():
    path = Path(PROJECT_ROOT) / "translations" / "es" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    assert len(list(catalog)) > 20
