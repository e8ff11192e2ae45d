"""Jinja filters for the pages: times in the agent's language and time zone.

Every value comes from the API serialisers as an ISO 8601 string (UTC); Flask-Babel converts it
to the agent's time zone (app/i18n.py) and formats it in the page's language.

A filter whose text depends on the time ("ahora", "hace 5 min", "23 h 59 min", "Hoy", the
window being open) records when that text next changes (`changes_at`); a polled fragment's ETag
carries the earliest such moment, and the fragment is answered 304 only before it
(app/inbox/views.py). Texts that change every minute count as holding `COARSE_SECONDS`: they are
approximate by nature ("hace 5 min" for a few minutes is true enough), and re-rendering every
minute would be what makes an idle inbox cost.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta
from flask import Flask, g
from flask_babel import format_date, format_datetime, format_time, get_locale, get_timezone
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app.whatsapp import rules
from app.whatsapp.mentions import Mentionable, find_mentions


def parse(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _local(value: datetime) -> datetime:
    return value.astimezone(get_timezone())


COARSE_SECONDS = 300


def changes_at(moment: datetime) -> None:
    """What is being rendered changes by itself at `moment` (read by `holds_until`)."""
    at = moment.timestamp()
    if at < g.get("holds_until", float("inf")):
        g.holds_until = at


def holds_until(default: float) -> float:
    """The earliest `changes_at` of what was rendered since the last call (else `default`)."""
    return min(g.pop("holds_until", default), default)


def _coarse(now: datetime) -> datetime:
    return now + timedelta(seconds=COARSE_SECONDS)


def _next_midnight(now: datetime) -> datetime:
    """The next local midnight ("Hoy" becomes "Ayer", "mañana" becomes "hoy")."""
    zone = ZoneInfo(str(get_timezone()))
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=zone)


def next_midnight(now: datetime | None = None) -> datetime:
    return _next_midnight(now or datetime.now(UTC))


def clock(value: str | None) -> str:
    """The time of day, e.g. 14:05 (es) or 2:05 PM (en)."""
    moment = parse(value)
    return format_time(moment, "short") if moment else ""


def full_datetime(value: str | None) -> str:
    moment = parse(value)
    return format_datetime(moment, "medium") if moment else ""


def relative(value: str | None, now: datetime | None = None) -> str:
    """How long ago, for the conversation list: "ahora", "hace 5 min", "ayer", then a date."""
    moment = parse(value)
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    delta = now - moment
    if delta < timedelta(minutes=1):
        changes_at(moment + timedelta(minutes=1))
        return _("now")
    if delta < timedelta(hours=12):
        changes_at(min(_coarse(now), moment + timedelta(hours=12)))
        return format_timedelta(-delta, granularity="minute", add_direction=True, format="short", locale=get_locale())
    changes_at(_next_midnight(now))
    today = _local(now).date()
    day = _local(moment).date()
    if day == today:
        return format_time(moment, "short")
    if day == today - timedelta(days=1):
        return _("yesterday")
    if (today - day).days < 7:
        return format_date(moment, "EEEE")
    return format_date(moment, "short")


def day_label(value: str | None, now: datetime | None = None) -> str:
    """The day separator of the thread: "Hoy", "Ayer" or the date."""
    moment = parse(value)
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    changes_at(_next_midnight(now))
    today = _local(now).date()
    day = _local(moment).date()
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    return format_date(moment, "full" if (today - day).days < 180 else "long")


def upcoming(value: str | datetime | None, now: datetime | None = None) -> str:
    """A time to come, for a snooze: "today 14:00", "tomorrow 09:00", "Monday 09:00" within a
    week, else the date and time."""
    moment = parse(value)
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    changes_at(min(_next_midnight(now), max(moment, now + timedelta(seconds=1))))
    today = _local(now).date()
    day = _local(moment).date()
    at = format_time(moment, "short")
    if day == today:
        return _("today %(time)s", time=at)
    if day == today + timedelta(days=1):
        return _("tomorrow %(time)s", time=at)
    if 0 < (day - today).days < 7:
        return _("%(day)s %(time)s", day=format_date(moment, "EEEE"), time=at)
    return date_time(moment)


def date_time(value: str | datetime | None) -> str:
    """A date and time without seconds, e.g. "3 dic 2026, 9:00" (es) or "Dec 3, 2026, 9:00 AM" (en)."""
    moment = parse(value)
    if moment is None:
        return ""
    return _("%(day)s, %(time)s", day=format_date(moment, "medium"), time=format_time(moment, "short"))


def day_key(value: str | datetime | None) -> str:
    moment = parse(value)
    return _local(moment).date().isoformat() if moment else ""


def window_open(last_customer_message_at: str | None, now: datetime | None = None) -> bool:
    """Whether free text may be sent (the 24-hour rule lives in app/whatsapp/rules.py)."""
    last = parse(last_customer_message_at)
    is_open = rules.window_open(last, now)
    expires = rules.window_expires_at(last)
    if is_open and expires is not None:
        changes_at(expires)
    return is_open


def time_left(value: str | None, now: datetime | None = None) -> str:
    """What is left of the 24-hour window, e.g. "5 h 12 min"."""
    moment = parse(value)
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    changes_at(min(_coarse(now), max(moment, now + timedelta(seconds=1))))
    seconds = max(0, int((moment - now).total_seconds()))
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    if hours:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    return _("%(minutes)s min", minutes=max(minutes, 1))


def initials(name: str | None) -> str:
    words = [w for w in (name or "").replace("+", " ").split() if w[:1].isalnum()]
    if not words:
        return "#"
    if words[0].isdigit():
        return words[0][-2:]
    return "".join(w[0] for w in words[:2]).upper()


def avatar_class(seed: object) -> str:
    """One of eight colour classes, stable for a conversation (no inline style: strict CSP)."""
    return f"av-{int(hashlib.sha256(str(seed).encode()).hexdigest(), 16) % 8}"


def _luminance(color: str) -> float:
    """WCAG 2 relative luminance of `#rrggbb`."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


LABEL_DARK_TEXT = "#111b21"  # --text in static/css/app.css


def label_text(color: str) -> str:
    """`dark` or `light`: the text colour (the page's dark text or white) with the higher WCAG
    contrast ratio on a label of this background colour."""
    try:
        background = _luminance(color)
    except (ValueError, IndexError):
        return "dark"
    on_white = 1.05 / (background + 0.05)
    on_dark = (background + 0.05) / (_luminance(LABEL_DARK_TEXT) + 0.05)
    return "light" if on_white >= on_dark else "dark"


def note_html(text: str, agents: list[Mentionable], me: int | None = None) -> Markup:
    """A private note as HTML: every character escaped, and each mention of an agent (the rule of
    app/whatsapp/mentions.py) wrapped in our own `<mark class="mention">` (`mention-me` when it
    names `me`)."""
    parts: list[Markup] = []
    position = 0
    for found in find_mentions(text, agents):
        parts.append(escape(text[position : found.start]))
        kind = "mention mention-me" if found.agent_id == me else "mention"
        parts.append(
            Markup('<mark class="{}" data-agent="{}">{}</mark>').format(
                kind, found.agent_id, text[found.start : found.end]
            )
        )
        position = found.end
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def init_formatting(app: Flask) -> None:
    for name, function in {
        "clock": clock,
        "full_datetime": full_datetime,
        "relative": relative,
        "day_label": day_label,
        "day_key": day_key,
        "upcoming": upcoming,
        "date_time": date_time,
        "window_open": window_open,
        "time_left": time_left,
        "initials": initials,
        "avatar_class": avatar_class,
        "label_text": label_text,
    }.items():
        app.jinja_env.filters[name] = function
