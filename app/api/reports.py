"""The reports (`GET /informes`, `GET /informes.csv`): read by every agent and API token. The
figures are app/services/reports.py's; this module shapes them as JSON and as CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, jsonify

from app.api.docs import API_AUTH, API_ERRORS, BAD_PARAMETER, documented, error_answer, json_response
from app.api.docs import Response as Documented
from app.api.guards import api_auth_required
from app.api.responses import Report
from app.api.schemas import ReportQuery
from app.api.validation import accepts
from app.api.views import bp
from app.services import reports

REPORT_ERRORS: dict[int, Documented] = {
    400: Documented(
        "`invalid_parameter` (`desde` or `hasta` missing or not a YYYY-MM-DD date), `invalid_range` (`hasta` "
        "before `desde`) or `range_too_long` (more than 366 days).",
        {
            "application/json": {
                "anyOf": [
                    BAD_PARAMETER.content["application/json"],
                    error_answer("invalid_range", "").content["application/json"],
                    error_answer("range_too_long", "").content["application/json"],
                ]
            }
        },
    ),
    **API_ERRORS,
}

# The CSV's columns (one header; `section` says which table a row belongs to).
CSV_COLUMNS = (
    "section",
    "date",
    "agent_id",
    "agent",
    "opened",
    "reopened",
    "resolved",
    "first_responses",
    "first_response_median_s",
    "first_response_p90_s",
    "first_response_business_median_s",
    "first_response_business_p90_s",
    "resolution_median_s",
    "resolution_p90_s",
    "messages_in",
    "messages_out",
    "waiting_now",
    "oldest_wait_s",
)


def report_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report in its documented JSON shape (ISO dates, UTC times with `Z`)."""
    return Report.model_validate(report).model_dump(mode="json")


def _seconds(value: float | None) -> int | str:
    """Whole seconds (no decimal separator for a spreadsheet to misread); empty when none."""
    return "" if value is None else round(value)


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV for a spreadsheet: UTF-8 with a byte-order mark (Excel reads the accents
    right), CRLF line ends, commas, one header row. Rows of `section` `day` (one per date of the
    range: volumes and the day's median first response), then `agent` (one per agent, the row
    without agent last: first responses as the replying agent, resolutions as the assignee, the
    backlog now), then `total` (the whole range, the backlog now). Durations in whole seconds."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    empty = dict.fromkeys(CSV_COLUMNS, "")
    for day in report["days"]:
        writer.writerow(
            {
                **empty,
                "section": "day",
                "date": day["date"].isoformat(),
                "opened": day["opened"],
                "reopened": day["reopened"],
                "resolved": day["resolved"],
                "first_responses": day["first_responses"],
                "first_response_median_s": _seconds(day["first_response_median_seconds"]),
                "first_response_business_median_s": _seconds(day["first_response_business_median_seconds"]),
                "messages_in": day["messages_in"],
                "messages_out": day["messages_out"],
            }.values()
        )

    def figures(first: dict[str, Any], resolution: dict[str, Any], waiting: dict[str, Any]) -> dict[str, Any]:
        return {
            "resolved": resolution["count"],
            "first_responses": first["wall"]["count"],
            "first_response_median_s": _seconds(first["wall"]["median_seconds"]),
            "first_response_p90_s": _seconds(first["wall"]["p90_seconds"]),
            "first_response_business_median_s": _seconds(first["business"]["median_seconds"]),
            "first_response_business_p90_s": _seconds(first["business"]["p90_seconds"]),
            "resolution_median_s": _seconds(resolution["median_seconds"]),
            "resolution_p90_s": _seconds(resolution["p90_seconds"]),
            "waiting_now": waiting["count"],
            "oldest_wait_s": _seconds(waiting["oldest_wait_seconds"]),
        }

    for row in report["agents"]:
        agent = row["agent"]
        writer.writerow(
            {
                **empty,
                "section": "agent",
                "agent_id": agent["id"] if agent else "",
                "agent": agent["name"] if agent else "",
                **figures(row["first_response"], row["resolution"], row["backlog"]),
            }.values()
        )
    days = report["days"]
    writer.writerow(
        {
            **empty,
            "section": "total",
            "opened": sum(d["opened"] for d in days),
            "reopened": sum(d["reopened"] for d in days),
            "messages_in": sum(d["messages_in"] for d in days),
            "messages_out": sum(d["messages_out"] for d in days),
            **figures(report["first_response"], report["resolution"], report["backlog"]),
        }.values()
    )
    return out.getvalue()


@bp.get("/informes")
@documented(
    "getReport",
    tag="reports",
    security=API_AUTH,
    responses={200: json_response("The report of the range.", Report), **REPORT_ERRORS},
)
@api_auth_required
@accepts("getReport")
def get_report(query: ReportQuery) -> Any:
    """Reports: response and resolution times, volumes, the backlog

    For the local dates `desde` … `hasta` (both included) of the business time zone: the first
    response time (median and 90th percentile, wall-clock and within business hours, from the
    customer's first unanswered message to the team's first reply), the resolution time,
    conversations opened, reopened and resolved per day, messages per hour of the day (inbound
    and outbound), and per agent. The backlog is now: open conversations waiting for an answer,
    how many, the longest wait and buckets. Any agent or API token may read it.
    """
    return jsonify(report_json(reports.build_report(query.desde, query.hasta)))


@bp.get("/informes.csv")
@documented(
    "getReportCsv",
    tag="reports",
    security=API_AUTH,
    responses={
        200: Documented(
            "The report as CSV (UTF-8 with BOM, CRLF; one header; `section` `day`, `agent` and `total` rows).",
            {"text/csv": {"type": "string"}},
            {"Content-Disposition": {"schema": {"type": "string"}, "description": "attachment; filename=…"}},
        ),
        **REPORT_ERRORS,
    },
)
@api_auth_required
@accepts("getReportCsv")
def get_report_csv(query: ReportQuery) -> Any:
    """The report as CSV, for a spreadsheet

    The same range and figures as `GET /informes`: a row per day (`section` `day`), a row per
    agent (`agent`) and the whole range (`total`); durations in whole seconds, dates ISO.
    """
    report = reports.build_report(query.desde, query.hasta)
    name = f"informe_{query.desde.isoformat()}_{query.hasta.isoformat()}.csv"
    return Response(
        report_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-cache"},
    )
