"""Labels and bulk actions in real headless Chromium (the fixtures of tests/test_browser.py:
one gunicorn, the fake Graph API, committed data): label a conversation from the thread header
and filter the list by it; select two conversations and resolve them at once; desktop and phone
screenshots in tests/screenshots/."""

from __future__ import annotations

import re

import pytest

from tests import test_browser as base
from tests.test_browser import ADMIN, _expect, _login, _new_page, _open, _row, _shot

world = base.world  # the fixtures of tests/test_browser.py: one gunicorn, one Chromium for the module
browser = base.browser

pytestmark = [pytest.mark.live, pytest.mark.browser]


def test_label_a_conversation_from_the_thread_header_and_filter_by_it(world, browser):
    page = _new_page(world, browser)
    _login(page, world, ADMIN)
    _open(page, world, "martin")
    # An admin creates a label inline in the picker; it is put on the conversation at once.
    page.locator("#labels-menu summary").click()
    page.locator("#new-label-name").fill("Envíos")
    page.locator("#new-label-color").evaluate("(input) => { input.value = '#fbca04'; }")
    page.locator("form[data-label-create] button[type=submit]").click()
    chip = page.locator("#thread-labels .label-chip", has_text="Envíos")
    chip.wait_for()
    _expect(lambda: _row(page, world.conversations["martin"]).locator(".label-chip").count() == 1, what="row chip")
    # A light colour gets dark text, for contrast.
    assert "label-text-dark" in (chip.get_attribute("class") or "")
    page.locator("#new-label-name").fill("Urgente")
    page.locator("#new-label-color").evaluate("(input) => { input.value = '#b60205'; }")
    page.locator("form[data-label-create] button[type=submit]").click()
    urgent = page.locator("#thread-labels .label-chip", has_text="Urgente")
    urgent.wait_for()
    assert "label-text-light" in (urgent.get_attribute("class") or "")
    _shot(page, "labels-picker-desktop")
    # Unticking a label takes it off.
    page.locator("label.label-option", has_text="Urgente").locator("input").uncheck()
    _expect(lambda: page.locator("#thread-labels .label-chip", has_text="Urgente").count() == 0, what="unlabelled")
    page.keyboard.press("Escape")
    # The list filter (after a reload the new label is offered).
    page.reload()
    page.locator("#label-filter").select_option(label="Envíos")
    _expect(lambda: page.locator("#list li.row").count() == 1, what="filtered list")
    assert page.locator("#list li.row").first.get_attribute("data-id") == str(world.conversations["martin"])
    page.wait_for_url(re.compile(r"[?&]label=\d+"))
    _shot(page, "labels-filter-desktop")
    page.locator("#label-filter").select_option(value="")
    _expect(lambda: page.locator("#list li.row").count() > 1, what="unfiltered list")
    page.context.close()


def test_select_two_conversations_and_resolve_them_in_bulk(world, browser):
    page = _new_page(world, browser)
    _login(page, world, ADMIN)
    lucia, sofia = world.conversations["lucia"], world.conversations["sofia"]
    page.locator("#select-toggle").click()
    page.locator("#bulk-bar").wait_for()
    _row(page, lucia).locator("input[data-select-row]").check()
    # In select mode a click on the row selects it instead of opening it.
    _row(page, sofia).locator("a").click()
    assert _row(page, sofia).locator("input[data-select-row]").is_checked()
    assert "c=" not in page.url
    page.wait_for_timeout(2500)  # a poll merges the list: the choice stays
    assert _row(page, lucia).locator("input[data-select-row]").is_checked()
    assert page.locator("#bulk-count").text_content().strip().startswith("2")
    _shot(page, "bulk-select-desktop")
    page.locator('#bulk-bar button[data-bulk="resolve"]').click()
    # The list shows open conversations: both leave it.
    _expect(lambda: _row(page, lucia).count() == 0 and _row(page, sofia).count() == 0, what="resolved rows gone")
    assert (
        world.scalar(
            "SELECT count(*) FROM conversations WHERE status = 'resolved' AND id IN (:a, :b)", a=lucia, b=sofia
        )
        == 2
    )
    page.context.close()
    # Put them back for the other tests (reopen in bulk, on the phone this time).
    phone = _new_page(world, browser, width=390, height=844)
    _login(phone, world, ADMIN)
    phone.locator("#status").select_option("resolved")
    _expect(lambda: _row(phone, lucia).count() == 1, what="resolved list")
    phone.locator("#select-toggle").click()
    phone.locator("#bulk-all").check()
    _shot(phone, "bulk-select-phone")
    phone.locator('#bulk-bar button[data-bulk="reopen"]').click()
    _expect(lambda: _row(phone, lucia).count() == 0, what="reopened rows gone")
    assert world.scalar("SELECT count(*) FROM conversations WHERE status = 'resolved'") == 0
    phone.locator("#bulk-bar [data-bulk-cancel]").click()
    assert phone.locator("#bulk-bar").is_hidden()
    phone.locator("#status").select_option("open")
    _expect(lambda: _row(phone, world.conversations["martin"]).count() == 1, what="open list")
    _row(phone, world.conversations["martin"]).locator("a").click()
    phone.locator("#labels-menu summary").click()
    _shot(phone, "labels-picker-phone")
    phone.context.close()


def test_the_admin_page_manages_labels(world, browser):
    page = _new_page(world, browser)
    _login(page, world, ADMIN)
    page.goto(world.base + "/admin/")
    page.locator("#new-label").fill("Factura")
    page.locator(".label-create button[type=submit]").click()
    row = page.locator('tr[data-label-row="Factura"]')
    row.wait_for()
    row.locator('input[name="name"]').fill("Facturación")
    row.locator("button[type=submit]", has_text=re.compile("Guardar|Save")).click()
    page.locator('tr[data-label-row="Facturación"]').wait_for()
    _shot(page, "labels-admin-desktop")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-label-row="Facturación"] .btn-danger').click()
    page.locator('tr[data-label-row="Facturación"]').wait_for(state="detached")
    assert world.console == [], world.console
