"""What the composer's template panel shows, computed here with WhatsApp's rules
(app/whatsapp/rules.py) so the browser never re-derives them.

For each approved template: one field per placeholder (in the order Graph expects them) and the
preview split into plain text and placeholders. The page only copies what the agent types into
the placeholder it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.services import templates as template_service
from app.whatsapp.rules import PLACEHOLDER, template_placeholders


@dataclass(frozen=True)
class Field:
    key: str  # "body.1", "header.1", "button.0.1": the parameter's name in the API request
    kind: str  # body, header or button
    name: str  # the placeholder's own name ("1", "first_name")
    button: int | None = None  # 1-based, for a URL button


@dataclass(frozen=True)
class Segment:
    text: str
    key: str | None = None  # a placeholder to fill (its default text is `text`)


@dataclass(frozen=True)
class TemplateChoice:
    id: int
    name: str
    language: str
    fields: list[Field]
    header: list[Segment]
    body: list[Segment]
    footer: str
    buttons: list[str]


def _field(key: str) -> Field:
    parts = key.split(".")
    if parts[0] == "button":
        return Field(key=key, kind="button", name=parts[2], button=int(parts[1]) + 1)
    return Field(key=key, kind=parts[0], name=parts[1])


def segments(text: str, component: str) -> list[Segment]:
    """`text` cut at each placeholder (rules.PLACEHOLDER); placeholders carry their parameter key."""
    pieces = PLACEHOLDER.split(text)  # text, name, text, name, …, text
    found: list[Segment] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            found.append(Segment(text="{{" + piece + "}}", key=f"{component}.{piece}"))
        elif piece:
            found.append(Segment(text=piece))
    return found


def _component(components: list[Any], kind: str) -> dict[str, Any] | None:
    for component in components:
        if isinstance(component, dict) and str(component.get("type", "")).lower() == kind:
            return component
    return None


def template_choice(template: Any) -> TemplateChoice:
    components = template.components if isinstance(template.components, list) else []
    header = _component(components, "header")
    if header and str(header.get("format", "TEXT")).upper() != "TEXT":
        header = None
    body = _component(components, "body")
    footer = _component(components, "footer")
    buttons = _component(components, "buttons")
    return TemplateChoice(
        id=template.id,
        name=template.name,
        language=template.language,
        fields=[_field(key) for key in template_placeholders(components)],
        header=segments(str(header.get("text", "")), "header") if header else [],
        body=segments(str(body.get("text", "")), "body") if body else [],
        footer=str(footer.get("text", "")) if footer else "",
        buttons=[str(b.get("text", "")) for b in (buttons or {}).get("buttons") or [] if isinstance(b, dict)],
    )


def template_choices() -> list[TemplateChoice]:
    return [template_choice(t) for t in template_service.approved_templates()]
