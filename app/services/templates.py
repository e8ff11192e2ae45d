"""Message templates: mirrored from the business account on Meta, listed for agents.

`sync_templates` fetches every template from Graph first (no database connection held),
then applies the difference in one transaction: new (name, language) pairs are added,
changed ones updated, and templates Meta no longer has are deleted, so they can no longer
be sent (messages already sent keep their text and template name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import MessageTemplate
from app.services.errors import DomainError, NotConfigured, UpstreamFailed
from app.services.graph_factory import graph_client
from app.whatsapp.graph_client import GraphError
from app.whatsapp.rules import template_placeholders

log = logging.getLogger(__name__)

APPROVED = "APPROVED"
# Serialises concurrent syncs (two cron runs): a transaction-level advisory lock.
_SYNC_LOCK = 0x7E3A_0001


# What a sync that could not run raises (nothing was changed): `NotConfigured` (its `setting`
# is missing) or `UpstreamFailed` (Graph did not list the templates). The CLI catches it.
TemplateSyncError = DomainError


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: int = 0


@dataclass(frozen=True)
class _Remote:
    external_id: str | None
    name: str
    language: str
    status: str
    category: str | None
    components: list[Any]

    @property
    def placeholders(self) -> list[str]:
        return template_placeholders(self.components)


def _parse(raw: dict[str, Any]) -> _Remote | None:
    name, language = raw.get("name"), raw.get("language")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        return None
    components = raw.get("components")
    category, status, external_id = raw.get("category"), raw.get("status"), raw.get("id")
    if isinstance(external_id, bool) or not isinstance(external_id, str | int):
        external_id = None
    return _Remote(
        external_id=str(external_id) if external_id is not None else None,
        name=name,
        language=language,
        status=status.upper() if isinstance(status, str) and status else "UNKNOWN",
        category=category.upper() if isinstance(category, str) and category else None,
        components=[c for c in components if isinstance(c, dict)] if isinstance(components, list) else [],
    )


def fetch_templates(waba_id: str) -> tuple[dict[tuple[str, str], _Remote], int]:
    """Every template of the business account on Meta, by (name, language); and how many were unusable."""
    try:
        raw_templates = graph_client().message_templates(waba_id)
    except GraphError as error:
        raise UpstreamFailed(f"WhatsApp did not list the templates: {error}") from error
    remote: dict[tuple[str, str], _Remote] = {}
    skipped = 0
    for raw in raw_templates:
        template = _parse(raw)
        if template is None:
            skipped += 1
            log.warning("template without name or language skipped: %r", raw.get("id"))
            continue
        remote[(template.name, template.language)] = template
    return remote, skipped


def sync_templates(waba_id: str | None = None) -> SyncResult:
    """Make the local templates those of the business account on Meta."""
    waba_id = (waba_id if waba_id is not None else current_app.config.get("WHATSAPP_BUSINESS_ACCOUNT_ID", "")).strip()
    if not waba_id:
        raise NotConfigured(
            "WHATSAPP_BUSINESS_ACCOUNT_ID is not set: it is the WhatsApp Business Account id "
            "(Meta's WhatsApp Manager → Account tools), whose templates are synced.",
            setting="WHATSAPP_BUSINESS_ACCOUNT_ID",
        )
    if not current_app.config.get("WHATSAPP_ACCESS_TOKEN"):
        raise NotConfigured(
            "WHATSAPP_ACCESS_TOKEN is not set: Graph cannot be asked for the templates.",
            setting="WHATSAPP_ACCESS_TOKEN",
        )
    db.session.commit()  # no transaction open while Graph answers (it may page for a while)
    remote, skipped = fetch_templates(waba_id)
    try:
        result = _apply(remote, skipped)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return result


def _apply(remote: dict[tuple[str, str], _Remote], skipped: int) -> SyncResult:
    db.session.execute(select(func.pg_advisory_xact_lock(_SYNC_LOCK)))
    local = {(t.name, t.language): t for t in db.session.execute(select(MessageTemplate)).scalars()}
    now = datetime.now(UTC)
    added = updated = unchanged = 0
    for key, template in remote.items():
        values = {
            "external_id": template.external_id,
            "status": template.status,
            "category": template.category,
            "components": template.components,
            "placeholders": template.placeholders,
        }
        row = local.get(key)
        if row is None:
            db.session.add(MessageTemplate(name=template.name, language=template.language, synced_at=now, **values))
            added += 1
            continue
        if any(getattr(row, field) != value for field, value in values.items()):
            updated += 1
            for field, value in values.items():
                setattr(row, field, value)
        else:
            unchanged += 1
        row.synced_at = now
    gone = [row.id for key, row in local.items() if key not in remote]
    if gone:
        db.session.execute(delete(MessageTemplate).where(MessageTemplate.id.in_(gone)))
    db.session.flush()
    log.info("templates synced: %d added, %d updated, %d removed, %d unchanged", added, updated, len(gone), unchanged)
    return SyncResult(added=added, updated=updated, removed=len(gone), unchanged=unchanged, skipped=skipped)


def approved_templates() -> list[MessageTemplate]:
    """Templates agents can send, by name then language."""
    return list(
        db.session.execute(
            select(MessageTemplate)
            .where(MessageTemplate.status == APPROVED)
            # Byte order, the same on every server whatever its locale.
            .order_by(MessageTemplate.name.collate("C"), MessageTemplate.language.collate("C"))
        ).scalars()
    )


def template_body(template: MessageTemplate) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "status": template.status,
        "components": template.components,
        "placeholders": template.placeholders,
    }
