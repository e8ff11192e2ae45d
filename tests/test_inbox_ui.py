"""The inbox pages on the server side: fragments with ETag/304, hashed assets, the strict CSP,
CSRF on session-authenticated API writes, preferences and the admin page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import refresh
from sqlalchemy import select

from app.models import Conversation
from app.services import agents as agent_service
from app.services import conversation_actions
from tests import meta
from tests.conftest import PROJECT_ROOT, store_approved_template
from tests.fake_graph import TEMPLATES, error
from tests.test_pages import csrf_token, login


@pytest.fixture
def conversation_id(db_session, post_webhook) -> int:  # type: ignore[no-untyped-def]
    post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": "hola <script>x</script>"})])))
    return db_session.execute(select(Conversation.id)).scalar_one()


def _page_csrf(client) -> str:  # type: ignore[no-untyped-def]
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)


def test_session_api_writes_need_the_csrf_header_and_bearer_tokens_do_not(client, agent, auth, conversation_id):
    login(client, agent.email)
    url = f"/whatsapp/api/conversaciones/{conversation_id}"
    refused = client.patch(url, json={"status": "pending"})
    assert refused.status_code == 403 and refused.json["error"] == "csrf_failed"
    assert client.patch(url, json={"status": "pending"}, headers={"X-CSRFToken": "forged"}).status_code == 403
    accepted = client.patch(url, json={"status": "pending"}, headers={"X-CSRFToken": _page_csrf(client)})
    assert accepted.status_code == 200 and accepted.json["status"] == "pending"
    assert client.get(url).status_code == 200  # reads need no token
    other = client.application.test_client()
    assert other.patch(url, json={"status": "open"}, headers=auth).status_code == 200


def test_pages_carry_a_strict_csp_and_no_inline_script_or_style(client, agent, conversation_id):
    login(client, agent.email)
    for path in ("/login", "/", f"/?c={conversation_id}", "/admin/"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
    thread = client.get(f"/?c={conversation_id}").text
    assert "<script>x</script>" not in thread and "hola &lt;script&gt;x&lt;/script&gt;" in thread


def test_assets_have_content_hashed_urls_cached_for_a_year(client):
    page = client.get("/login").text
    css = re.search(r'href="(/assets/([0-9a-f]{12})/css/app\.css)"', page)
    js = re.search(r'src="(/assets/[0-9a-f]{12}/js/app\.js)"', page)
    assert css and js
    response = client.get(css.group(1))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = client.get("/assets/000000000000/css/app.css")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"
    assert client.get("/assets/" + css.group(2) + "/../config.py").status_code == 404
    assert client.get("/assets/" + css.group(2) + "/nothing.css").status_code == 404


def test_fragments_answer_304_when_nothing_changed_and_200_when_something_did(
    client, agent, post_webhook, conversation_id
):
    login(client, agent.email)
    for url in ("/inbox/fragments/list?tab=all&status=open", f"/inbox/fragments/conversations/{conversation_id}"):
        first = client.get(url)
        assert first.status_code == 200 and first.headers["ETag"]
        assert first.headers["Cache-Control"] == "private, no-cache"
        assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    thread_url = f"/inbox/fragments/conversations/{conversation_id}"
    etag = client.get(thread_url).headers["ETag"]
    post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": "otro mensaje"})])))
    changed = client.get(thread_url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and "otro mensaje" in changed.text
    assert client.get("/inbox/fragments/conversations/999999").status_code == 404


def test_older_messages_page_backwards(client, agent, post_webhook):
    messages = [meta.message(content={"body": f"mensaje {i:02d}"}, ts=1_700_000_000 + i) for i in range(45)]
    post_webhook(meta.delivery(meta.value(messages=messages)))
    login(client, agent.email)
    page = client.get("/").text
    cid = int(re.search(r"c=(\d+)", page).group(1))
    thread = client.get(f"/?c={cid}").text
    assert "mensaje 44" in thread and "mensaje 04" not in thread
    before = re.search(r'data-id="cursor" data-before="(\d+)"', thread).group(1)
    older = client.get(f"/inbox/fragments/conversations/{cid}/older?before={before}")
    assert older.status_code == 200 and "mensaje 00" in older.text and "mensaje 44" not in older.text
    assert client.get(f"/inbox/fragments/conversations/{cid}/older?before=1").status_code == 404


def test_fragments_need_a_login(client, conversation_id):
    assert client.get("/inbox/fragments/list").status_code == 302
    assert client.get(f"/inbox/fragments/conversations/{conversation_id}").status_code == 302


def test_language_and_time_zone_preferences(client, agent, post_webhook):
    post_webhook(meta.delivery(meta.value(messages=[meta.message(ts=1_700_000_000)])))  # 22:13 UTC
    login(client, agent.email)
    token = csrf_token(client.get("/").text)
    client.post("/preferences", data={"csrf_token": token, "lang": "en", "tz": "Asia/Tokyo", "next": "/"})
    cid = re.search(r"c=(\d+)", client.get("/").text).group(1)
    refresh()  # the test's app context spans requests: forget the locale Flask-Babel cached
    page = client.get(f"/?c={cid}").text
    assert '<html lang="en">' in page and "Assign to me" in page
    assert "7:13" in page  # 22:13 UTC is 07:13 in Tokyo
    client.post(
        "/preferences", data={"csrf_token": token, "lang": "xx", "tz": "Mars/Base", "next": "https://evil.example/"}
    )
    assert client.get("/").status_code == 200
    assert client.post("/preferences", data={"lang": "es"}).status_code == 400  # no CSRF token


def test_only_admins_see_the_admin_page(client, agent, other_agent):
    login(client, other_agent.email, "correct horse battery 2")
    assert client.get("/admin/").status_code == 403
    assert "/admin/" not in client.get("/").text


def test_admin_creates_agents_and_generated_passwords_are_shown_once(client, agent):
    login(client, agent.email)
    token = csrf_token(client.get("/admin/").text)
    created = client.post(
        "/admin/agents", data={"csrf_token": token, "name": "Carla", "email": "carla@example.com", "role": "agent"}
    )
    assert created.status_code == 200
    password = re.search(r'<code id="shown-password">([^<]+)</code>', created.text).group(1)
    assert agent_service.authenticate("carla@example.com", password) is not None
    duplicate = client.post(
        "/admin/agents", data={"csrf_token": token, "name": "C", "email": "CARLA@example.com", "role": "agent"}
    )
    assert duplicate.status_code == 400 and "Ya existe" in duplicate.text
    carla = agent_service.find_agent("carla@example.com")
    reset = client.post(f"/admin/agents/{carla.id}/password", data={"csrf_token": token})
    new_password = re.search(r'<code id="shown-password">([^<]+)</code>', reset.text).group(1)
    assert new_password != password and agent_service.authenticate("carla@example.com", new_password)
    assert client.post(f"/admin/agents/{carla.id}/deactivate", data={"csrf_token": token}).status_code == 302
    assert agent_service.authenticate("carla@example.com", new_password) is None
    assert client.post(f"/admin/agents/{carla.id}/activate", data={"csrf_token": token}).status_code == 302
    assert client.post(f"/admin/agents/{carla.id}/role", data={"csrf_token": token, "role": "admin"}).status_code == 302
    assert agent_service.find_agent("carla@example.com").role == "admin"
    assert client.post(f"/admin/agents/{carla.id}/deactivate").status_code == 400  # no CSRF token


def test_the_last_admin_cannot_be_demoted_and_no_one_deactivates_themselves(client, agent):
    login(client, agent.email)
    token = csrf_token(client.get("/admin/").text)
    client.post(f"/admin/agents/{agent.id}/role", data={"csrf_token": token, "role": "agent"})
    assert agent_service.find_agent(agent.email).role == "admin"
    client.post(f"/admin/agents/{agent.id}/deactivate", data={"csrf_token": token})
    assert agent_service.find_agent(agent.email).active is True


def test_template_sync_from_the_admin_page(client, agent, graph):
    graph.templates.append(
        {
            "id": "1",
            "name": "hola",
            "language": "es",
            "status": "APPROVED",
            "components": [{"type": "BODY", "text": "Hola"}],
        }
    )
    login(client, agent.email)
    token = csrf_token(client.get("/admin/").text)
    response = client.post("/admin/templates/sync", data={"csrf_token": token}, follow_redirects=True)
    assert "Plantillas sincronizadas: 1 añadidas" in response.text


def test_a_template_sync_that_cannot_run_is_explained_in_the_pages_language(app, client, agent, graph, monkeypatch):
    monkeypatch.setitem(app.config, "WHATSAPP_BUSINESS_ACCOUNT_ID", "")
    login(client, agent.email)
    token = csrf_token(client.get("/admin/").text)
    response = client.post("/admin/templates/sync", data={"csrf_token": token}, follow_redirects=True)
    assert "No se pudieron sincronizar las plantillas: WHATSAPP_BUSINESS_ACCOUNT_ID no está configurado." in (
        response.text
    )
    monkeypatch.setitem(app.config, "WHATSAPP_BUSINESS_ACCOUNT_ID", meta.WABA_ID)
    graph.script(TEMPLATES, error(190))
    response = client.post("/admin/templates/sync", data={"csrf_token": token}, follow_redirects=True)
    assert "No se pudieron sincronizar las plantillas: WhatsApp no devolvió la lista de plantillas." in response.text


def test_english_catalogue_translates_every_string():
    path = Path(PROJECT_ROOT) / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    assert [m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)] == []
    assert not [m.id for m in catalog if m.fuzzy and m.id]


def test_impossible_ids_are_404_before_a_view_runs(client, agent, conversation_id):
    login(client, agent.email)
    for path in (
        "/inbox/fragments/conversations/0",
        f"/inbox/fragments/conversations/{2**31}",
        f"/inbox/fragments/conversations/{conversation_id}/older?before={2**63}",
        f"/inbox/fragments/conversations/{2**31}/older?before=1",
    ):
        assert client.get(path).status_code == 404, path


def test_the_list_fragment_moves_the_address_bar_only_for_what_the_agent_chose(client, agent, conversation_id):
    login(client, agent.email)
    chosen = client.get(f"/inbox/fragments/list?tab=mine&status=all&q=ho&c={conversation_id}")
    assert chosen.headers["HX-Replace-Url"] == f"/?tab=mine&status=all&q=ho&c={conversation_id}"
    # Its state comes along out of band, for the next poll to send.
    assert 'id="list-tab" value="mine" hx-swap-oob="true"' in chosen.text
    assert re.search(
        rf'id="list-extra" hidden hx-swap-oob="true">\s*<input type="hidden" name="page" value="">'
        rf'\s*<input type="hidden" name="c" value="{conversation_id}">',
        chosen.text,
    )
    poll = client.get("/inbox/fragments/list?tab=mine", headers={"HX-Trigger": "list"})
    assert "HX-Replace-Url" not in poll.headers


def test_the_thread_fragment_carries_the_window_state_the_composer_follows(client, agent, post_webhook):
    post_webhook(meta.delivery(meta.value(messages=[meta.message(ts=1_700_000_000)])))  # long ago: closed
    login(client, agent.email)
    cid = int(re.search(r"c=(\d+)", client.get("/").text).group(1))
    fragment = client.get(f"/inbox/fragments/conversations/{cid}").text
    assert 'data-window-open="0"' in fragment
    assert re.search(
        r'<p class="window-info is-closed" id="window-info" aria-live="polite" hx-swap-oob="true">', fragment
    )
    post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": "ahora"})])))
    fragment = client.get(f"/inbox/fragments/conversations/{cid}").text
    assert 'data-window-open="1"' in fragment and "Ventana de respuesta abierta" in fragment


def test_template_fields_and_preview_are_rendered_on_the_server(client, agent, conversation_id):
    template = store_approved_template(
        "pedido_listo",
        [
            {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
            {"type": "BODY", "text": "Hola {{1}}, tu pedido {{ 2 }} <b>listo</b>."},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Ver", "url": "https://x.example/{{1}}"}]},
        ],
    )
    login(client, agent.email)
    page = client.get(f"/?c={conversation_id}").text
    assert f'<option value="{template.id}">pedido_listo (es)</option>' in page
    block = page[page.index(f'<template id="template-{template.id}"') :]
    block = block[: block.index("</template>")]
    keys = re.findall(r'<input type="text" id="tp-\d+" data-key="([^"]+)"', block)
    assert keys == ["header.1", "body.1", "body.2", "button.0.1"]
    assert "Encabezado {{1}}" in block and "Enlace del botón 1 {{1}}" in block
    assert (
        '<p class="preview-body">Hola <mark class="empty" data-key="body.1" data-empty="{{1}}">{{1}}</mark>, '
        'tu pedido <mark class="empty" data-key="body.2" data-empty="{{2}}">{{2}}</mark> &lt;b&gt;listo&lt;/b&gt;.</p>'
    ) in block


def test_canned_responses_fragment_offers_the_matching_ones_escaped(client, agent, conversation_id):
    conversation_actions.create_canned_response(agent.id, "envio", "Llega en <48 h>")
    conversation_actions.create_canned_response(agent.id, "horario", "De 9 a 18")
    login(client, agent.email)
    found = client.get("/inbox/fragments/canned?q=env").text
    assert 'role="option"' in found and "/envio" in found and "Llega en &lt;48 h&gt;" in found
    assert "horario" not in found
    assert "Ninguna respuesta rápida" in client.get("/inbox/fragments/canned?q=zzz").text


def test_older_page_moves_the_day_separator_up_out_of_band(client, agent, post_webhook):
    messages = [meta.message(content={"body": f"mensaje {i:02d}"}, ts=1_700_000_000 + i) for i in range(45)]
    post_webhook(meta.delivery(meta.value(messages=messages)))
    login(client, agent.email)
    cid = int(re.search(r"c=(\d+)", client.get("/").text).group(1))
    thread = client.get(f"/?c={cid}").text
    day = re.search(r'<li class="day" id="day-([0-9-]+)"', thread).group(1)
    before = re.search(r'data-id="cursor" data-before="(\d+)"', thread).group(1)
    assert f'hx-get="/inbox/fragments/conversations/{cid}/older?before={before}"' in thread
    older = client.get(f"/inbox/fragments/conversations/{cid}/older?before={before}").text
    assert f'<li id="day-{day}" hx-swap-oob="delete"></li>' in older
    assert 'data-id="cursor" data-before=""' in older and "hx-get" not in older  # nothing older left


@pytest.mark.parametrize("path", ["/assets/0123456789ab/audio", "/assets/%C2%87/audio", "/assets/x/js"])
def test_a_static_directory_is_no_asset_404_not_500(client, path):
    """Found by schemathesis: a directory under static/ was read as a file (500)."""
    assert client.get(path).status_code == 404
