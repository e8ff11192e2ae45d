"""`flask --app wsgi …` commands: agents, demo data, maintenance, local bootstrap."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.media import sweep_media
from app.jobs.worker import run_worker, worker_queue
from app.models import Conversation
from app.services import agents as agent_service
from app.services import demo, jobs_admin, maintenance, media_fetch
from app.services import templates as template_service

log = logging.getLogger(__name__)

agents_cli = AppGroup("agents", help="Manage agents and their API tokens.")
demo_cli = AppGroup("demo", help="Demo data.")
maintenance_cli = AppGroup("maintenance", help="Housekeeping.")
templates_cli = AppGroup("templates", help="WhatsApp message templates.")


@click.group("jobs", cls=AppGroup, invoke_without_command=True)
@click.pass_context
@with_appcontext
def jobs_cli(ctx: click.Context) -> None:
    """Background jobs. Without a subcommand: list failed jobs and media given up on."""
    if ctx.invoked_subcommand is None:
        _print_failures()


@agents_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Name shown to the team.")
@click.option("--admin", is_flag=True, help="Give the agent the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def agents_create(email: str, name: str, admin: bool, password_stdin: bool) -> None:
    """Create an agent (the password is asked for, or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        agent = agent_service.create_agent(email, name, password, role="admin" if admin else "agent")
    except agent_service.AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {agent.role} {agent.email} (id {agent.id}).")


@agents_cli.command("token")
@click.argument("email")
@click.option("--name", default="", help="A label for the token.")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Expire after this many days.")
def agents_token(email: str, name: str, days: int | None) -> None:
    """Print a new API token for the agent (shown once; only its hash is stored)."""
    try:
        token = agent_service.create_token(email, name=name, ttl_days=days)
    except agent_service.AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(token)


@agents_cli.command("list")
def agents_list() -> None:
    """List agents."""
    for agent in agent_service.list_agents():
        state = "active" if agent.active else "inactive"
        click.echo(f"{agent.id}\t{agent.email}\t{agent.name}\t{agent.role}\t{state}")


@agents_cli.command("deactivate")
@click.argument("email")
def agents_deactivate(email: str) -> None:
    """Deactivate an agent and revoke their tokens."""
    try:
        agent = agent_service.deactivate_agent(email)
    except agent_service.AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Deactivated {agent.email}; their API tokens are revoked.")


@demo_cli.command("seed")
@click.option("--conversations", type=click.IntRange(min=1, max=5_000_000), default=200)
@click.option("--messages-per-conversation", type=click.IntRange(min=1, max=1000), default=10)
def demo_seed(conversations: int, messages_per_conversation: int) -> None:
    """Bulk-load realistic Spanish-language conversations."""
    started = time.perf_counter()
    result = demo.seed(conversations, messages_per_conversation)
    click.echo(
        f"Seeded {result.conversations} conversations and {result.messages} messages "
        f"in {time.perf_counter() - started:.1f} s."
    )


@maintenance_cli.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: RAW_DELIVERY_RETENTION_DAYS.")
def maintenance_prune(days: int | None) -> None:
    """Delete raw webhook deliveries older than the retention period (messages stay)."""
    days = days or current_app.config["RAW_DELIVERY_RETENTION_DAYS"]
    removed = maintenance.prune_deliveries(days)
    click.echo(f"Removed {removed} raw deliveries older than {days} days.")


@maintenance_cli.command("prune-media")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: MEDIA_RETENTION_DAYS.")
def maintenance_prune_media(days: int | None) -> None:
    """Delete our copies of media stored longer ago than the retention (the thread then says so)."""
    days = days or current_app.config["MEDIA_RETENTION_DAYS"]
    if not days:
        click.echo("MEDIA_RETENTION_DAYS is 0: media is kept forever, nothing pruned.")
        return
    removed = media_fetch.prune_media(days)
    click.echo(f"Pruned {removed} media files stored more than {days} days ago.")


@maintenance_cli.command("prune-orphans")
def maintenance_prune_orphans() -> None:
    """Delete stored media files no message serves (older than a day; the worker does it daily)."""
    removed = media_fetch.prune_orphans()
    click.echo(f"Removed {removed} orphaned media files.")


@jobs_cli.command("list")
def jobs_list() -> None:
    """List failed jobs and media given up on (failed or corrupt)."""
    _print_failures()


def _print_failures() -> None:
    jobs = jobs_admin.failed_jobs()
    media = jobs_admin.given_up_media()
    click.echo(f"{len(jobs)} failed jobs" + (":" if jobs else "."))
    for job in jobs:
        when = job.failed_at.isoformat(timespec="seconds") if job.failed_at else "-"
        click.echo(f"  job {job.id}\t{job.task_name}\t{job.args}\tattempts {job.attempts}\tfailed {when}")
    click.echo(f"{len(media)} media given up on" + (":" if media else "."))
    for item in media:
        click.echo(
            f"  message {item.message_id}\t{item.type}\t{item.state}\tattempts {item.attempts}\t{item.error or ''}"
        )
    if jobs or media:
        click.echo("Retry them with `flask --app wsgi jobs retry` (--jobs ID… / --media ID… for some only).")


@jobs_cli.command("retry")
@click.option("--job", "job_ids", type=int, multiple=True, help="Only this failed job (repeatable).")
@click.option("--media", "message_ids", type=int, multiple=True, help="Only this message's media (repeatable).")
def jobs_retry(job_ids: tuple[int, ...], message_ids: tuple[int, ...]) -> None:
    """Queue failed jobs again, and owe again the media given up on (all of them unless named)."""
    everything = not job_ids and not message_ids
    jobs = media = 0
    if everything or job_ids:
        jobs = jobs_admin.retry_failed_jobs(list(job_ids) or None)
    if everything or message_ids:
        media = jobs_admin.retry_given_up_media(list(message_ids) or None)
    click.echo(f"Queued again: {jobs} failed jobs, {media} media.")


@jobs_cli.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs that are due, then stop (scripts, tests).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Default: JOBS_CONCURRENCY.")
def jobs_worker(once: bool, concurrency: int | None) -> None:
    """Run the jobs worker (`make run` and gunicorn's master start it for you)."""
    run_worker(current_app._get_current_object(), once=once, concurrency=concurrency)  # type: ignore[attr-defined]


@jobs_cli.command("sweep")
def jobs_sweep() -> None:
    """Queue a fetch for every pending media without a job (the worker does this every minute)."""
    flask_app = current_app._get_current_object()  # type: ignore[attr-defined]
    queue = worker_queue(flask_app)

    async def sweep() -> int:
        async with queue.open_async():
            return await sweep_media(queue, flask_app)

    click.echo(f"Queued {asyncio.run(sweep())} fetches.")


@templates_cli.command("sync")
def templates_sync() -> None:
    """Mirror the business account's templates from Meta (WHATSAPP_BUSINESS_ACCOUNT_ID)."""
    try:
        result = template_service.sync_templates()
    except template_service.TemplateSyncError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Templates synced: {result.added} added, {result.updated} updated, {result.removed} removed, "
        f"{result.unchanged} unchanged."
        + (f" {result.skipped} without name or language skipped." if result.skipped else "")
    )


@click.command("bootstrap")
@click.option("--demo-hint/--no-demo-hint", default=True, help="Say how to load demo data into an empty inbox.")
def bootstrap(demo_hint: bool) -> None:
    """Migrate the database and create a first admin when there is none (used by `make run`)."""
    upgrade()
    created = agent_service.ensure_first_admin()
    url = "http://127.0.0.1:5000"
    if created:
        agent, password = created
        click.echo(
            "\n  First admin created. Log in at "
            f"{url} with\n    email:    {agent.email}\n    password: {password}\n"
            "  (shown once; change it or create your own agents with `flask --app wsgi agents create`)\n"
        )
    else:
        click.echo(f"\n  Log in at {url} with your agent account.\n")
    if demo_hint and db.session.scalar(select(func.count()).select_from(Conversation)) == 0:
        click.echo(
            "  The inbox is empty: `make demo` (in another terminal, or before `make run`) loads a few\n"
            "  demo conversations; or point Meta's webhook here (README: Pointing Meta's webhook at it).\n"
        )


def register(app: Flask) -> None:
    app.cli.add_command(agents_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(maintenance_cli)
    app.cli.add_command(templates_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(bootstrap)
