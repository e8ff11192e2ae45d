"""The reports page (`/inbox/informes`): the figures of app/services/reports.py drawn as SVG
charts (app/inbox/charts.py, templates/inbox/_charts.html) with the tables under them, a range
form with presets and the CSV link. Every agent may open it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import login_required
from pydantic import ValidationError

from app.api.docs import LOGIN_REDIRECT, RATE_LIMITED_PAGE, RETRY_AFTER, SESSION, documented, html, query
from app.api.schemas import ReportQuery
from app.inbox.charts import bar_chart, duration
from app.inbox.views import bp
from app.services import reports
from app.services.errors import Invalid


def _presets(today: date) -> list[dict[str, Any]]:
    return [
        {"key": "7d", "label": _("Last 7 days"), "desde": today - timedelta(days=6), "hasta": today},
        {"key": "30d", "label": _("Last 30 days"), "desde": today - timedelta(days=29), "hasta": today},
        {"key": "month", "label": _("This month"), "desde": today.replace(day=1), "hasta": today},
    ]


def _range_error(error: Exception) -> str:
    if isinstance(error, Invalid) and error.code == "invalid_range":
        return _("The end date cannot be before the start date.")
    if isinstance(error, Invalid) and error.code == "range_too_long":
        return _("Choose at most %(days)s days.", days=reports.MAX_DAYS)
    return _("Enter both dates as YYYY-MM-DD.")


def _charts(report: dict[str, Any]) -> dict[str, Any]:
    days = report["days"]
    count = len(days)
    every = 1 if count <= 8 else 7 if count <= 62 else 30
    day_names = [format_date(d["date"], "d MMM") for d in days]
    hour_names = [f"{hour}" for hour in range(24)]
    hours = report["hours"]
    backlog = report["backlog"]
    bucket_names = {
        "under_1h": _("Under 1 h"),
        "1h_to_4h": _("1–4 h"),
        "4h_to_24h": _("4–24 h"),
        "over_24h": _("Over 24 h"),
    }
    return {
        "hours": bar_chart(
            hour_names,
            [
                ("in", [h["messages_in"] for h in hours], _("Inbound")),
                ("out", [h["messages_out"] for h in hours], _("Outbound")),
            ],
            every=3,
        ),
        "days": bar_chart(
            day_names,
            [
                ("opened", [d["opened"] + d["reopened"] for d in days], _("Opened")),
                ("resolved", [d["resolved"] for d in days], _("Resolved")),
            ],
            every=every,
        ),
        "response": bar_chart(
            day_names,
            [
                (
                    "business",
                    [(d["first_response_business_median_seconds"] or 0) / 60 for d in days],
                    _("Business hours"),
                ),
                ("wall", [(d["first_response_median_seconds"] or 0) / 60 for d in days], _("Clock time")),
            ],
            every=every,
            value_label=lambda minutes: duration(minutes * 60),
            left=76,  # room for "2 h 30 min"
        ),
        "backlog": bar_chart(
            [bucket_names[b["key"]] for b in backlog["buckets"]],
            [("waiting", [b["count"] for b in backlog["buckets"]], _("Waiting"))],
        ),
    }


@bp.get("/inbox/informes")
@documented(
    "reportsPage",
    tag="pages",
    security=SESSION,
    parameters=[
        query("desde", {"type": "string", "format": "date"}, "The first local date (default: 6 days before today)."),
        query("hasta", {"type": "string", "format": "date"}, "The last local date (default: today)."),
    ],
    responses={
        200: html("The reports page."),
        302: LOGIN_REDIRECT,
        400: html("The dates are wrong: the page with the form and the reason."),
        429: RATE_LIMITED_PAGE,
        503: html(
            "The database is unavailable (an HTML error page with `Retry-After`).", headers={"Retry-After": RETRY_AFTER}
        ),
    },
)
@login_required
def reports_page() -> ResponseReturnValue:
    """The reports (HTML)

    Charts (messages per hour of the day, conversations opened and resolved per day, the median
    first response per day, the backlog now) with their tables, for the local dates `desde` …
    `hasta` of the business time zone; both absent: the last 7 days. Wrong dates answer 400 with
    the form and the reason.
    """
    today = reports.business_today()
    presets = _presets(today)
    given = {k: request.args.get(k, "") for k in ("desde", "hasta")}
    if not given["desde"] and not given["hasta"]:
        given = {"desde": presets[0]["desde"].isoformat(), "hasta": today.isoformat()}
    context: dict[str, Any] = {"presets": presets, "desde": given["desde"], "hasta": given["hasta"], "today": today}
    try:
        dates = ReportQuery.model_validate(given)
        report = reports.build_report(dates.desde, dates.hasta)
    except (ValidationError, Invalid) as error:
        return render_template("inbox/reports.html", error=_range_error(error), report=None, **context), 400
    context["desde"], context["hasta"] = dates.desde.isoformat(), dates.hasta.isoformat()
    return render_template(
        "inbox/reports.html",
        error=None,
        report=report,
        charts=_charts(report),
        duration=duration,
        day=lambda d: format_date(d, "EEE d MMM"),
        **context,
    )
