"""The agents' pages: the two-pane inbox, server-rendered.

The page and the fragments the browser polls for live updates are rendered by the same
templates (templates/inbox/_list.html and _thread.html), so there is one way a row or a
message looks. htmx polls the fragments (`hx-get` + `hx-trigger="every 2s"`) and idiomorph merges
them into the page. Fragments answer `ETag` and `304 Not Modified` to `If-None-Match`, and an
unchanged poll is answered before the agent's row is loaded or anything is rendered
(app/inbox/polls.py): its ETag starts with a key of everything the fragment depends on (`poll_key`:
the inbox version the writers bump, app/cache.py, which also covers the agent's row; the session's
agent; the query; the language and time zone asked for), and then until when it holds: the
earliest moment a text of it changes with the time alone (app/inbox/formatting.py). An idle
inbox's poll costs no query and no body. Everything that changes data goes through the JSON API
(/whatsapp/api), with the page's CSRF token in `X-CSRFToken`.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, cast

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from app.api import serializers
from app.api.docs import (
    CSRF_FAILED_PAGE,
    FRAGMENT,
    FRAGMENT_UNCHANGED,
    IF_NONE_MATCH,
    INBOX_VERSION,
    LOCATION,
    LOGIN_REDIRECT,
    PAGE_FILTERS,
    PUBLIC,
    RATE_LIMITED_PAGE,
    RETRY_AFTER,
    SESSION,
    documented,
    empty,
    html,
    html_form,
    query,
)
from app.auth.views import safe_next
from app.converters import MAX_BIG_ID, MAX_ID
from app.extensions import db
from app.i18n import LANGUAGES, TZ_COOKIE, agent_zone, chosen_language, chosen_time_zone, time_zones, valid_time_zone
from app.inbox.composer import template_choices
from app.inbox.formatting import changes_at, day_key, holds_until, init_formatting, next_midnight, note_html
from app.inbox.polls import LIST_POLLER, answer_unchanged, fragment_headers, known_etags, poll_key, unchanged
from app.models import Agent, Message
from app.models.conversations import CONVERSATION_STATUSES
from app.services.conversation_actions import list_canned_responses
from app.services.conversations import (
    ConversationFilters,
    MessagePage,
    UnknownCursor,
    get_conversation_summary,
    list_conversations,
    list_messages,
    list_messages_around,
)
from app.services.errors import InvalidParameter
from app.services.labels import list_labels
from app.services.mentions import list_mentions
from app.services.notifications import newest_ids, notification_feed
from app.services.preferences import update_preferences
from app.services.search import MAX_QUERY_CHARS as SEARCH_QUERY_CHARS
from app.services.search import MAX_RESULTS as SEARCH_MAX_RESULTS
from app.services.search import search_messages, snippet_html
from app.whatsapp.mentions import Mentionable
from app.whatsapp.snooze import presets as snooze_presets

bp = Blueprint("inbox", __name__)
bp.record_once(lambda state: init_formatting(cast(Flask, state.app)))
# The 304 of an unchanged poll, decided before the rate limiter (app/inbox/polls.py), answered
# once it has counted the request.
bp.before_request(answer_unchanged)

TABS = ("mine", "unassigned", "all")
STATUS_FILTERS = (*CONVERSATION_STATUSES, "all")
PER_PAGE = 25
THREAD_PAGE = 40
# A thread opened on a message (a search result): this many messages before it, and the rest up
# to the newest, at most AROUND_AFTER after it (beyond that the page shows that stretch of the
# past, without following new messages, and links to the newest).
AROUND_BEFORE = 15
AROUND_AFTER = 200
SEARCH_PAGE = 20
CANNED_SHOWN = 8
CANNED_QUERY_CHARS = 100


def _arg_int(name: str, default: int, maximum: int = MAX_ID) -> int:
    """The pages' one reading of an integer query parameter (`page`, `c`, `before`): ASCII
    digits within 1..`maximum`, else `default` — a bad value is ignored, as if it were absent.
    (`str.isdigit()` alone would let "²" or "①" through to `int()`, which refuses them.)"""
    raw = request.args.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(maximum)):
        return default
    value = int(raw)
    return value if 0 < value <= maximum else default


def _list_state() -> dict[str, Any]:
    tab = request.args.get("tab", "all")
    status = request.args.get("status", "open")
    q = request.args.get("q", "").replace("\x00", "").strip()[:100]
    return {
        "tab": tab if tab in TABS else "all",
        "status": status if status in STATUS_FILTERS else "open",
        "q": q,
        "label": _arg_int("label", 0) or None,
        "page": _arg_int("page", 1, maximum=1_000_000),
    }


def _list_context(state: dict[str, Any], selected_id: int | None) -> dict[str, Any]:
    filters = ConversationFilters(
        statuses=() if state["status"] == "all" else (state["status"],),
        assignee="me" if state["tab"] == "mine" else state["tab"],
        q=state["q"] or None,
        label=state["label"],
    )
    result = list_conversations(
        db.session, agent_id=current_user.id, filters=filters, page=state["page"], per_page=PER_PAGE
    )
    return {
        **state,
        "result": result,
        "conversations": [serializers.conversation_summary(row) for row in result.rows],
        "selected_id": selected_id,
        # Read by static/js/notifications.js: the poll that refreshes the list brings it.
        "feed": notification_feed(db.session, current_user.id, current_user.notify_scope),
    }


def _thread_context(conversation_id: int, around: int | None = None) -> dict[str, Any]:
    """The open conversation: its newest messages, or with `around` (a message id) the thread
    from just before that message on, the message marked (`hit_id`)."""
    row = get_conversation_summary(db.session, conversation_id)
    if row is None:
        abort(404)
    live = True
    page: MessagePage | None = None
    if around:
        try:
            page = list_messages_around(
                db.session, conversation_id, around, before=AROUND_BEFORE, at_least=THREAD_PAGE, after_max=AROUND_AFTER
            )
            live = page.reaches_newest
        except UnknownCursor:
            around = None  # not a message of this conversation: open it as usual
    if page is None:
        page = list_messages(db.session, conversation_id, before=None, limit=THREAD_PAGE)
    return {
        "conversation_id": conversation_id,
        "selected": serializers.conversation_summary(row),
        "thread": [serializers.message(m, page.reactions) for m in page.messages],
        "next_cursor": page.next_cursor,
        "labels": list_labels(),
        "hit_id": around,
        "live": live,
        "snooze": _snooze_presets(),
    }


def _snooze_presets() -> dict[str, str]:
    """The snooze menu's times (ISO 8601 with the offset), in the agent's time zone; "in an hour"
    is left to the browser (now + 1 h needs no zone), so the fragment changes once a day."""
    zone = agent_zone()
    now = datetime.now(UTC)
    changes_at(next_midnight(now))
    choices = snooze_presets(now, zone)
    return {
        "zone": zone.key,
        "tomorrow": choices.tomorrow.isoformat(),
        "next_week": choices.next_week.isoformat(),
        "min": now.astimezone(zone).strftime("%Y-%m-%dT00:00"),  # the date-time picker starts today
    }


def _agents() -> list[Agent]:
    """The active agents (the assign menus, the composer's @), once per request."""
    if "active_agents" not in g:
        g.active_agents = list(
            db.session.execute(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name)).scalars()
        )
    return cast(list[Agent], g.active_agents)


# The longest a fragment's ETag holds without any write: what bounds the staleness should a
# version bump ever be lost (a database error right after a commit; app/cache.py).
HOLD_MAX_SECONDS = 600


def _conditional(html: str, key: str | None = None) -> Response:
    """A fragment with an ETag of its key, until when it holds and its body; 304 when the
    browser already has this body (a write elsewhere changed the key, not this fragment): the
    new ETag then replaces its own."""
    digest = hashlib.blake2b(html.encode(), digest_size=12).hexdigest()
    until = int(holds_until(time.time() + HOLD_MAX_SECONDS))
    etag = f"{key}-{until}-{digest}" if key else digest
    if any(parts[-1] == digest for parts in known_etags()):
        return fragment_headers(Response(status=304), etag)
    return fragment_headers(make_response(html), etag)


@bp.get("/")
@documented(
    "inboxPage",
    tag="pages",
    security=SESSION,
    parameters=[
        *PAGE_FILTERS,
        query("c", {"type": "integer", "minimum": 1}, "The id of the conversation to open."),
        query(
            "m",
            {"type": "integer", "minimum": 1},
            "With `c`: a message of that conversation (a search result) to open the thread at, marked.",
        ),
    ],
    responses={
        200: html("The inbox page."),
        302: LOGIN_REDIRECT,
        404: html("`c` names no conversation (an HTML error page)."),
        429: RATE_LIMITED_PAGE,
        503: html(
            "The database is unavailable (an HTML error page with `Retry-After`).", headers={"Retry-After": RETRY_AFTER}
        ),
    },
)
@login_required
def index() -> ResponseReturnValue:
    """The two-pane inbox (HTML)

    The conversation list (25 per page) and, with `c`, one conversation's newest 40
    messages, rendered from the same serializers as the JSON API; with `c` and `m`, the
    thread from 15 messages before message `m` to the newest (at most 200 after it), `m`
    marked, for the page to scroll to. Unknown parameter values fall back to their defaults
    instead of an error. Without a session: a redirect to `/login?next=…`.
    """
    selected_id = _arg_int("c", 0) or None
    context = _list_context(_list_state(), selected_id)
    if selected_id:
        context.update(_thread_context(selected_id, _arg_int("m", 0, maximum=MAX_BIG_ID) or None))
    # The composer's templates, and the "New conversation" dialog's.
    context["templates"] = template_choices()
    if not selected_id:
        context["labels"] = list_labels()  # the list's label filter (the thread's context has them too)
    context["notify_since"] = newest_ids(db.session, current_user.id)
    context["bulk_snooze"] = context.get("snooze") or _snooze_presets()
    return render_template("inbox/index.html", agents=_agents(), phone_region=_phone_region(), **context)


def _phone_region() -> str:
    """The name of DEFAULT_PHONE_REGION in the page's language ("España", "Spain")."""
    region = current_app.config.get("DEFAULT_PHONE_REGION") or "ES"
    locale = get_locale()
    return str(locale.territories.get(region, region)) if locale else region


@bp.get("/inbox/fragments/list")
@documented(
    "inboxListFragment",
    tag="pages",
    security=SESSION,
    parameters=[
        *PAGE_FILTERS,
        query("c", {"type": "integer", "minimum": 1}, "The open conversation (marked in the list)."),
        IF_NONE_MATCH,
        INBOX_VERSION,
    ],
    responses={200: FRAGMENT, 302: LOGIN_REDIRECT, 304: FRAGMENT_UNCHANGED, 429: RATE_LIMITED_PAGE},
)
@login_required
def list_fragment() -> ResponseReturnValue:
    """The live part of the conversation list (HTML fragment, polled)

    Tabs with their counts, the page of rows and the pager, rendered by the same template
    as the inbox page (with `oob`, also its state — tab, page, open conversation — for htmx
    to swap in). The page polls it every 2 s while visible (15 s when hidden) with
    `If-None-Match`; an unchanged list answers 304 with no body, from a key of the inbox version,
    the agent, the query and the locale, before anything is rendered. The ETag is
    `"<key>-<holds until, epoch seconds>-<body digest>"`.
    """
    state = _list_state()
    selected_id = _arg_int("c", 0) or None
    key = poll_key("list")
    response = unchanged(key)
    if response is None:
        context = _list_context(state, selected_id)
        response = _conditional(render_template("inbox/_list.html", oob=True, **context), key)
    if request.headers.get("HX-Trigger") != LIST_POLLER:
        # A filter, tab or page the agent chose: the address bar follows (htmx replaces it).
        page = state["page"] if state["page"] > 1 else None
        response.headers["HX-Replace-Url"] = url_for(
            "inbox.index",
            tab=state["tab"],
            status=state["status"],
            q=state["q"] or None,
            label=state["label"],
            page=page,
            c=selected_id,
        )
    return response


@bp.get("/inbox/fragments/conversations/<id:conversation_id>")
@documented(
    "inboxThreadFragment",
    tag="pages",
    security=SESSION,
    parameters=[
        query(
            "hit",
            {"type": "integer", "minimum": 1},
            "The search result the page was opened at (`m` of the page): the same messages as the page, from "
            "15 before it to the newest, that message marked.",
        ),
        IF_NONE_MATCH,
        INBOX_VERSION,
    ],
    responses={
        200: FRAGMENT,
        302: LOGIN_REDIRECT,
        304: FRAGMENT_UNCHANGED,
        404: html("No such conversation."),
        429: RATE_LIMITED_PAGE,
    },
)
@login_required
def thread_fragment(conversation_id: int) -> ResponseReturnValue:
    """The live part of an open conversation (HTML fragment, polled)

    The header with its actions, the conversation's state (status, unread count, the 24-hour
    window) and its newest 40 messages, as in the inbox page (with `oob`, also the composer's
    window line for htmx to swap in). Asked by the page whenever the list's ETag key moved (and
    every 30 s), with `If-None-Match` and 304 like the list; the browser merges changed messages
    by id, so the composer and older messages already loaded are untouched.
    """
    key = poll_key("thread")
    same = unchanged(key)  # the poll's hooks answer first (app/inbox/polls.py); this is the backstop
    if same is not None:
        return same
    # Opened on a search result: the same window as the page (that message on), so a poll
    # merges into what is shown instead of replacing it with the newest page.
    context = {**_list_state(), **_thread_context(conversation_id, _arg_int("hit", 0, maximum=MAX_BIG_ID) or None)}
    return _conditional(render_template("inbox/_thread.html", agents=_agents(), oob=True, **context), key)


@bp.get("/inbox/fragments/conversations/<id:conversation_id>/older")
@documented(
    "inboxOlderMessagesFragment",
    tag="pages",
    security=SESSION,
    parameters=[
        query("before", {"type": "integer", "minimum": 1}, "A message id; the 40 messages before it.", required=True)
    ],
    responses={
        200: FRAGMENT,
        302: LOGIN_REDIRECT,
        304: FRAGMENT_UNCHANGED,
        404: html("No such conversation or message."),
        429: RATE_LIMITED_PAGE,
    },
)
@login_required
def older_fragment(conversation_id: int) -> ResponseReturnValue:
    """Older messages of a conversation (HTML fragment, on scroll up)"""
    before = _arg_int("before", 0, maximum=MAX_BIG_ID)
    if not before:
        abort(404)
    try:
        page = list_messages(db.session, conversation_id, before=before, limit=THREAD_PAGE)
    except UnknownCursor:
        abort(404)
    thread = [serializers.message(m, page.reactions) for m in page.messages]
    anchor = db.session.get(Message, before)
    moved_day = day_key(thread[-1]["sent_at"]) if thread else None
    context = {
        "conversation_id": conversation_id,
        "thread": thread,
        "next_cursor": page.next_cursor,
        # The page ends on the day the thread in the browser starts with: that separator moves up.
        "moved_day": moved_day if anchor and moved_day == day_key(anchor.sent_at) else None,
    }
    return _conditional(render_template("inbox/_messages.html", **context))


@bp.get("/inbox/fragments/search")
@documented(
    "inboxSearchFragment",
    tag="pages",
    security=SESSION,
    parameters=[
        query("q", {"type": "string", "maxLength": SEARCH_QUERY_CHARS}, "What the agent typed in the search box."),
        query("page", {"type": "integer", "minimum": 1}, "The page of results (20 each)."),
        *PAGE_FILTERS[:2],
    ],
    responses={200: html("An HTML fragment (empty without a search)."), 302: LOGIN_REDIRECT, 429: RATE_LIMITED_PAGE},
)
@login_required
def search_fragment() -> ResponseReturnValue:
    """The messages that match the search box (HTML fragment)

    The same search as `GET /whatsapp/api/mensajes`, newest first, 20 at a time: each result
    is the matching message's snippet (escaped, the matched words marked), its conversation
    and its date, and links to the conversation opened at that message. Empty when the box
    is, or holds no word; page 2 and later answer only the further results and their "more"
    button, to go below the first ones.
    """
    state = _list_state()
    q = request.args.get("q", "").replace("\x00", "").strip()[:SEARCH_QUERY_CHARS]
    page = _arg_int("page", 1, maximum=SEARCH_MAX_RESULTS)
    result = None
    if q:
        try:
            result = search_messages(db.session, q, page=page, per_page=SEARCH_PAGE)
        except InvalidParameter:
            result = None  # punctuation only: nothing to look for
    if result is None:
        return ""
    hits = [
        {**serializers.found_message(row, result.reactions, ""), "snippet": snippet_html(row.headline)}
        for row in result.rows
    ]
    return render_template(
        "inbox/_search_results.html",
        hits=hits,
        result=result,
        search_q=q,
        more=page < result.pages,
        capped=result.total >= SEARCH_MAX_RESULTS,
        **state,
    )


@bp.get("/inbox/fragments/canned")
@documented(
    "inboxCannedFragment",
    tag="pages",
    security=SESSION,
    parameters=[query("q", {"type": "string", "maxLength": 100})],
    responses={200: html("An HTML fragment."), 302: LOGIN_REDIRECT, 429: RATE_LIMITED_PAGE},
)
@login_required
def canned_fragment() -> ResponseReturnValue:
    """The canned responses offered by the composer's "/" (HTML fragment)

    The first canned responses whose short code or text starts with `q`, escaped, as the
    list the composer shows under the text box.
    """
    q = request.args.get("q", "").replace("\x00", "").strip()[:CANNED_QUERY_CHARS] or None
    canned = [row.CannedResponse for row in list_canned_responses(q)[:CANNED_SHOWN]]
    return render_template("inbox/_canned.html", canned=canned)


MENTIONS_SHOWN = 20


@bp.get("/inbox/fragments/mentions")
@documented(
    "inboxMentionsFragment",
    tag="pages",
    security=SESSION,
    responses={200: html("An HTML fragment."), 302: LOGIN_REDIRECT, 429: RATE_LIMITED_PAGE},
)
@login_required
def mentions_fragment() -> ResponseReturnValue:
    """The agent's mentions, for the inbox's Mentions panel (HTML fragment)

    The newest 20 notes that mention the agent, unread first: who wrote it, in which
    conversation, when, and the note with the mentions marked; each links to the conversation
    opened at the note (`GET /whatsapp/api/menciones` is the same list in JSON).
    """
    result = list_mentions(current_user.id, page=1, per_page=MENTIONS_SHOWN)
    return render_template(
        "inbox/_mentions.html", mentions=[serializers.mention(row) for row in result.rows], unread=result.unread
    )


def _mentionable() -> list[Mentionable]:
    """The agents a note may mention (the active ones, as app/services/mentions.py records them),
    for highlighting notes: the page's and the thread poll's own list of agents, no extra query."""
    return [Mentionable(id=a.id, name=a.name, email=a.email) for a in _agents()]


@bp.app_template_filter("note_html")
def note_html_filter(text: str | None) -> Markup:
    """A note's text, escaped, with each mention of an agent marked (yours as `mention-me`)."""
    me = current_user.id if current_user.is_authenticated else None
    return note_html(text or "", _mentionable(), me)


@bp.post("/preferences")
@documented(
    "setPreferences",
    tag="pages",
    security=PUBLIC,
    body=html_form(
        {
            "lang": {
                "type": "string",
                "enum": ["es", "en", "auto"],
                "description": "`auto` for the browser's own.",
            },
            "tz": {"type": "string", "description": "An IANA time zone, or `auto` for the browser's own."},
            "next": {"type": "string", "description": "Where to go back to; only local paths are followed."},
        }
    ),
    responses={302: empty("Saved; back to `next`.", headers={"Location": LOCATION}), 400: CSRF_FAILED_PAGE},
)
def preferences() -> ResponseReturnValue:
    """The agent's language and time zone (on their row; before logging in, in the session)

    The pages' language and time zone; CSRF-checked like every form. `auto` follows the
    browser. A logged-in agent's choice is saved on their row (it follows them to every browser
    and survives logging out and in); the session keeps it too, as this browser's choice before
    the next login.
    """
    changes: dict[str, str | None] = {}
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
        changes["language"] = lang
    elif lang == "auto":
        session.pop("lang", None)
        changes["language"] = None
    zone = request.form.get("tz", "")
    if zone == "auto":
        session.pop("tz", None)
        changes["time_zone"] = None
    elif valid_time_zone(zone):
        session["tz"] = zone
        changes["time_zone"] = zone
    if changes and current_user.is_authenticated:
        update_preferences(current_user, changes)
    return redirect(safe_next(request.form.get("next")))


@bp.app_context_processor
def page_globals() -> dict[str, Any]:
    return {
        "LANGUAGES": LANGUAGES,
        "TIME_ZONES": time_zones,
        "TZ_COOKIE": TZ_COOKIE,
        "chosen_language": chosen_language,
        "chosen_time_zone": chosen_time_zone,
        "display_name": serializers.display_name,
    }
