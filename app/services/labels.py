"""Labels: admins define them (name unique whatever the case, colour `#rrggbb`); agents put
them on conversations (`conversation_actions`). Each function owns its transaction, as the
other services do: it validates, writes and commits, or raises a domain error before anything
is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Agent, ConversationLabel, Label
from app.models.labels import LABEL_COLOR_PATTERN, MAX_LABEL_NAME_CHARS
from app.services.errors import Conflict, Forbidden, Invalid, NotFound

_COLOR = re.compile(LABEL_COLOR_PATTERN, re.IGNORECASE)


def _name(name: str) -> str:
    name = " ".join(name.split())  # trimmed, inner runs of spaces as one
    if not name or len(name) > MAX_LABEL_NAME_CHARS or "\x00" in name:
        raise Invalid(f"'name' must be 1–{MAX_LABEL_NAME_CHARS} characters.", field="name", code="invalid_label_name")
    return name


def _color(color: str) -> str:
    if not _COLOR.match(color):
        raise Invalid("'color' must be a colour as #rrggbb, e.g. #1f883d.", field="color", code="invalid_color")
    return color.lower()


def _duplicate(name: str) -> Conflict:
    return Conflict(f"A label named '{name}' already exists.", code="duplicate_label_name")


def _require_admin(by: Agent) -> None:
    if not by.is_admin:
        raise Forbidden("Only an admin can define labels.")


def list_labels() -> list[Label]:
    """Every label, by name (case-insensitive)."""
    return list(db.session.execute(select(Label).order_by(func.lower(Label.name), Label.id)).scalars())


def get_label(label_id: int) -> Label:
    label = db.session.get(Label, label_id)
    if label is None:
        raise NotFound("Label not found.")
    return label


def create_label(by: Agent, name: str, color: str) -> Label:
    _require_admin(by)
    name, color = _name(name), _color(color)
    new_id = db.session.execute(
        insert(Label).values(name=name, color=color, created_by_id=by.id).on_conflict_do_nothing().returning(Label.id)
    ).scalar()
    if new_id is None:
        db.session.rollback()
        raise _duplicate(name)
    db.session.commit()
    return get_label(new_id)


def update_label(by: Agent, label_id: int, *, name: str | None = None, color: str | None = None) -> Label:
    """Rename and/or recolour a label; every conversation carrying it shows the change."""
    _require_admin(by)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name)
    if color is not None:
        values["color"] = _color(color)
    if not values:
        raise Invalid("Send at least one of: name, color.")
    try:
        with db.session.begin_nested():
            changed = db.session.execute(
                update(Label).where(Label.id == label_id).values(**values).returning(Label.id)
            ).scalar()
    except IntegrityError:
        db.session.rollback()
        raise _duplicate(values["name"]) from None
    if changed is None:
        db.session.rollback()
        raise NotFound("Label not found.")
    db.session.commit()
    db.session.expire_all()
    return get_label(label_id)


def delete_label(by: Agent, label_id: int) -> None:
    """Remove a label, and with it from every conversation (ON DELETE CASCADE)."""
    _require_admin(by)
    gone = db.session.execute(delete(Label).where(Label.id == label_id).returning(Label.id)).scalar()
    if gone is None:
        db.session.rollback()
        raise NotFound("Label not found.")
    db.session.commit()


def require_labels(label_ids: Iterable[int], *, field: str = "labels") -> list[int]:
    """The ids, each once, in the order given; `Invalid` naming those that are no label."""
    wanted = list(dict.fromkeys(label_ids))
    if not wanted:
        return []
    known = set(db.session.execute(select(Label.id).where(Label.id.in_(wanted))).scalars())
    unknown = [label_id for label_id in wanted if label_id not in known]
    if unknown:
        raise Invalid(
            f"No label with id {', '.join(map(str, unknown))}.", field=field, code="unknown_labels", unknown=unknown
        )
    return wanted


# --- labels on conversations (within the caller's transaction: the caller commits) -----------


def set_conversation_labels(conversation_ids: Sequence[int], label_ids: Sequence[int], agent_id: int | None) -> None:
    """Each conversation carries exactly `label_ids` afterwards."""
    db.session.execute(
        delete(ConversationLabel).where(
            ConversationLabel.conversation_id.in_(conversation_ids), ConversationLabel.label_id.not_in(label_ids)
        )
    )
    add_conversation_labels(conversation_ids, label_ids, agent_id)


def add_conversation_labels(conversation_ids: Sequence[int], label_ids: Sequence[int], agent_id: int | None) -> None:
    rows = [
        {"conversation_id": conversation_id, "label_id": label_id, "created_by_id": agent_id}
        for conversation_id in conversation_ids
        for label_id in label_ids
    ]
    if rows:
        db.session.execute(insert(ConversationLabel).values(rows).on_conflict_do_nothing())


def remove_conversation_labels(conversation_ids: Sequence[int], label_ids: Sequence[int]) -> None:
    db.session.execute(
        delete(ConversationLabel).where(
            ConversationLabel.conversation_id.in_(conversation_ids), ConversationLabel.label_id.in_(label_ids)
        )
    )
