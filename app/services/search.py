"""Full-text search over what was said: texts, captions, document file names and private notes.

PostgreSQL full-text search with the `es_unaccent` configuration (migration 0007: Spanish
snowball stemming after `unaccent`), so the search ignores case and accents and finds the
other forms of a word ("cancion" finds "canción", "factura" finds "facturas"); the last word
typed also matches as a prefix ("factu" finds "factura"). One GIN expression index,
`ix_messages_search`, over `search_document()`.

Newest first (by id, the order the inbox stored them), not by rank: chat messages are short,
so ranks barely differ, agents look for the latest time something was said, and ranking a
common word means scoring every match (seconds at a million messages) where newest-first
stops after one page. Two statements whatever the page: the number of matches, counted up to
`MAX_RESULTS` (a search matching more says so and is narrowed by typing more), then the page
with each message's conversation, contact and highlighted snippet. When the count is under
the cap the page is chosen among those few matches on the index alone (a materialised CTE);
otherwise the word is common and walking the newest messages finds a page at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, Select, func, literal_column, select

from app.extensions import DbSession
from app.models import Contact, Conversation, Message
from app.models.messages import HIDDEN_TYPES
from app.services.conversations import _reactions_for, thread_select
from app.services.errors import InvalidParameter

MAX_QUERY_CHARS = 200
MAX_WORDS = 12
MAX_RESULTS = 1000  # matches counted; pages end there
PREFIX_MIN_CHARS = 3  # a shorter last word matches whole words only (a 1–2 letter prefix matches everything)
SEARCH_CONFIG = "es_unaccent"
# ts_headline marks matches with these; they are removed from the text first, so every one in
# the result is ours, and the snippet is HTML-escaped before they become <mark> elements.
_START, _STOP = "\x01", "\x02"
_HEADLINE_OPTIONS = (
    f"StartSel={_START}, StopSel={_STOP}, MaxWords=24, MinWords=10, ShortWord=0, MaxFragments=2, "
    "FragmentDelimiter=' … '"
)
_WORD = re.compile(r"[^\W_]+")


@dataclass
class SearchPage:
    rows: list[Any]
    reactions: dict[str, list[dict[str, Any]]]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0


def ts_query_text(q: str) -> str:
    """The `to_tsquery` input for what an agent typed: every word must match (AND), the last
    one also as a prefix. Only letters and digits reach it, so nothing typed is tsquery syntax.
    `InvalidParameter` when `q` has no word at all."""
    words = _WORD.findall(q)[:MAX_WORDS]
    if not words:
        raise InvalidParameter("q", "'q' must contain at least one letter or digit.")
    terms = [*words[:-1], words[-1] + (":*" if len(words[-1]) >= PREFIX_MIN_CHARS else "")]
    return " & ".join(terms)


def _query(q: str) -> ColumnElement[Any]:
    return func.to_tsquery(literal_column(f"'{SEARCH_CONFIG}'::regconfig"), ts_query_text(q))


def _conditions(tsquery: ColumnElement[Any]) -> list[Any]:
    return [Message.search_vector.op("@@")(tsquery), Message.type.not_in(HIDDEN_TYPES), Message.deleted_at.is_(None)]


def snippet_html(headline: str | None) -> Markup:
    """ts_headline's output as safe HTML: the text escaped, the matches in <mark>."""
    out: list[str] = []
    inside = False
    for part in re.split(f"([{_START}{_STOP}])", headline or ""):
        if part == _START and not inside:
            out.append("<mark>")
            inside = True
        elif part == _STOP and inside:
            out.append("</mark>")
            inside = False
        elif part not in (_START, _STOP):
            out.append(str(escape(part)))
    if inside:
        out.append("</mark>")
    return Markup("".join(out).strip())


def _page_select(tsquery: ColumnElement[Any], page_ids: Any) -> Select[Any]:
    document = func.concat_ws(
        " · ",
        func.nullif(func.translate(Message.text, _START + _STOP, ""), ""),
        func.translate(Message.media_filename, "._-" + _START + _STOP, "   "),
    )
    return (
        thread_select()
        .add_columns(
            Conversation.status.label("conversation_status"),
            Contact.display_name.label("contact_display_name"),
            Contact.profile_name.label("contact_name"),
            Contact.wa_id.label("contact_wa_id"),
            Contact.user_id.label("contact_user_id"),
            func.ts_headline(
                literal_column(f"'{SEARCH_CONFIG}'::regconfig"), document, tsquery, _HEADLINE_OPTIONS
            ).label("headline"),
        )
        .join(page_ids, page_ids.c.id == Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .order_by(Message.id.desc())
    )


def search_messages(session: DbSession, q: str, *, page: int, per_page: int) -> SearchPage:
    tsquery = _query(q)
    conditions = _conditions(tsquery)
    counted = select(Message.id).where(*conditions).limit(MAX_RESULTS).subquery()
    total = session.execute(select(func.count()).select_from(counted)).scalar_one()
    offset = (page - 1) * per_page
    if offset >= total:
        return SearchPage(rows=[], reactions={}, page=page, per_page=per_page, total=total)
    if total < MAX_RESULTS:
        # Few matches: take them all from the index, then the page among them.
        hits = select(Message.id).where(*conditions).cte("hits").prefix_with("MATERIALIZED", dialect="postgresql")
        page_ids = select(hits.c.id).order_by(hits.c.id.desc()).limit(per_page).offset(offset).cte("page_ids")
    else:
        page_ids = (
            select(Message.id).where(*conditions).order_by(Message.id.desc()).limit(per_page).offset(offset)
        ).cte("page_ids")
    rows = list(session.execute(_page_select(tsquery, page_ids)).all())
    wamids = [row.Message.wamid for row in rows if row.Message.wamid]
    return SearchPage(rows=rows, reactions=_reactions_for(session, wamids), page=page, per_page=per_page, total=total)
