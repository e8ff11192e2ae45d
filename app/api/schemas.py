"""What the API accepts, declared once: pydantic models for query strings and JSON bodies.

The models are the validation (spectree runs them before a view, see `app/api/validation.py`),
the documentation (they are the OpenAPI schemas) and the types the views receive. They are
strict where the API always was: integers in a query string are ASCII digits only ("²",
"1.0", "+1" are refused), booleans are not integers in bodies, text never holds NUL
characters, and unknown body fields are refused where they always were.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticUseDefault

from app.converters import MAX_BIG_ID, MAX_ID
from app.i18n import LANGUAGES, valid_time_zone
from app.models.agents import NOTIFY_SCOPES
from app.models.conversations import (
    CONVERSATION_STATUSES,
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_DISPLAY_NAME_CHARS,
    MAX_NOTES_CHARS,
)
from app.models.labels import MAX_LABEL_NAME_CHARS
from app.whatsapp.media_rules import LIMITS, MAX_CAPTION_CHARS, MAX_FILENAME_CHARS, human_size
from app.whatsapp.rules import MAX_TEXT_CHARS, is_single_emoji

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
DEFAULT_MESSAGE_LIMIT = 30
MAX_MESSAGE_LIMIT = 100
MAX_QUERY_CHARS = 100
MAX_LABELS_PER_CONVERSATION = 50
MAX_BULK_IDS = 100  # as app/services/conversation_actions.py
DEFAULT_MENTIONS_PER_PAGE = 20
EDITABLE_PREFERENCES = ("language", "time_zone", "notify_desktop", "notify_sound", "notify_scope")


# --- building blocks -----------------------------------------------------------------------


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters.")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must be a non-empty string.")
    return value


def _first_value(value: Any) -> Any:
    """A parameter given twice counts once, by its first value (as `request.args.get` reads it)."""
    return value[0] if isinstance(value, list) and value else value


def _query_digits(value: Any) -> Any:
    """A query integer: ASCII digits only; empty means the default."""
    value = _first_value(value)
    if value is None or value == "":
        raise PydanticUseDefault()
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise PydanticCustomError("whole_number", "must be a whole number.")
    return int(value)


def _query_text(value: Any) -> Any:
    """Query text: trimmed; empty means not given."""
    value = _first_value(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise PydanticUseDefault()
    return value


def _query_int(default: int | None, minimum: int, maximum: int, description: str) -> Any:
    """An integer query parameter, documented as `{type: integer, minimum, maximum, default}`."""
    documented: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        documented["default"] = default
    bounded = Annotated[int, Field(ge=minimum, le=maximum)]
    return Annotated[
        bounded if default is not None else bounded | None,
        BeforeValidator(_query_digits),
        WithJsonSchema(documented),
        Field(default=default, description=description),
    ]


# Text an agent writes: a string (never a number), not blank, within WhatsApp's limit, no NUL.
AgentText = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        json_schema_extra={"pattern": r"\S", "not": {"pattern": r"\u0000"}},
        description=f"Not blank, at most {MAX_TEXT_CHARS} characters, no NUL characters.",
    ),
    AfterValidator(_not_blank),
    AfterValidator(_no_nul),
]
# A short, non-empty name without NUL (template names, languages, placeholders).
Name = Annotated[StrictStr, Field(min_length=1), AfterValidator(_no_nul)]
AgentId = Annotated[StrictInt, Field(ge=1, le=MAX_ID, description="An active agent's id.")]
LabelId = Annotated[StrictInt, Field(ge=1, le=MAX_ID, description="A label's id.")]
ConversationId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
MessageId = Annotated[StrictInt, Field(ge=1, le=MAX_BIG_ID)]


INSTANT_EXAMPLE = "2026-12-03T09:00:00+01:00"


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 date and time with its UTC offset (`…+01:00` or `…Z`), or null; in UTC.

    In UTC because Python takes offsets up to ±23:59 and PostgreSQL only up to ±15:59
    (`+17:52` was a 500, found by schemathesis); an instant that UTC cannot hold (year 9999 or 1
    pushed past it by its offset) is refused like any other bad value."""
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 40 and value.isascii():
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.utcoffset() is not None:
                parsed = parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise PydanticCustomError(
            "instant", f"must be an ISO 8601 date and time with its UTC offset, such as {INSTANT_EXAMPLE}."
        )
    return parsed


# When a snooze ends: a future instant with its offset, or null (when the customer writes).
SnoozedUntil = Annotated[
    datetime | None,
    PlainValidator(_instant),
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "format": "date-time",
            "examples": [INSTANT_EXAMPLE],
            "description": "When the snooze ends: an ISO 8601 date and time with its UTC offset, in the future (a "
            "time in the past or without an offset is 400); null: until the customer writes.",
        }
    ),
]


# --- query strings -------------------------------------------------------------------------


def _statuses(value: Any) -> Any:
    value = _first_value(value)
    if not isinstance(value, str):
        return value
    value = value.strip()
    if not value or value == "all":
        return ()
    statuses = tuple(s.strip() for s in value.split(",") if s.strip())
    if any(s not in CONVERSATION_STATUSES for s in statuses):
        raise PydanticCustomError("status", f"must be one of {', '.join(CONVERSATION_STATUSES)} or all.")
    return statuses


def _assignee(value: Any) -> Any:
    value = _first_value(value)
    if not isinstance(value, str):
        return value
    value = value.strip() or "all"
    if value in ("all", "me", "unassigned"):
        return value
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_ID:
        raise PydanticCustomError("assignee", "must be me, unassigned, all or an agent id.")
    return int(value)


def _unread(value: Any) -> Any:
    value = _first_value(value)
    if not isinstance(value, str):
        return value
    value = value.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    if value:
        raise PydanticCustomError("boolean", "must be true or false.")
    raise PydanticUseDefault()


SearchText = Annotated[
    Annotated[str, Field(max_length=MAX_QUERY_CHARS), AfterValidator(_no_nul)] | None,
    BeforeValidator(_query_text),
    WithJsonSchema({"type": "string", "maxLength": MAX_QUERY_CHARS, "pattern": r"^[^\u0000]*$"}),
    Field(default=None),
]


_STATUS_ALTERNATIVES = "|".join(CONVERSATION_STATUSES)


class ConversationListQuery(BaseModel):
    """`GET /conversaciones`: paging and the list's filters."""

    model_config = ConfigDict(extra="ignore")

    page: _query_int(1, 1, MAX_PAGE, "1-based page number. Digits only; empty means the default.")  # type: ignore[valid-type]
    per_page: _query_int(  # type: ignore[valid-type]
        DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, "Conversations per page. Digits only; empty means the default."
    )
    status: Annotated[
        tuple[str, ...],
        BeforeValidator(_statuses),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": rf"^\s*(all|\s*({_STATUS_ALTERNATIVES})?\s*(,\s*({_STATUS_ALTERNATIVES})?\s*)*)\s*$",
                "default": "all",
                "examples": ["open", "open,pending"],
            }
        ),
        Field(
            default="all",
            validate_default=True,
            description="`all` (the default, same as empty), or a comma-separated list of `open`, `pending`, "
            "`resolved`, `snoozed` (spaces around items and empty items are ignored; `all` cannot be mixed with "
            "statuses).",
        ),
    ]
    assignee: Annotated[
        str | int,
        BeforeValidator(_assignee),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "enum": ["all", "me", "unassigned"]},
                    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                ],
                "default": "all",
            }
        ),
        Field(
            default="all",
            description="The tab: `all` (the default, same as empty), `me` (assigned to the caller), "
            "`unassigned`, or the numeric id of an agent. Surrounding spaces are ignored.",
        ),
    ]
    q: Annotated[
        SearchText,
        Field(
            description="Case-insensitive substring of the contact's name or phone number (`%` and `_` match "
            "themselves). Surrounding spaces are trimmed first; empty means no search. At most 100 characters "
            "after trimming, no NUL characters."
        ),
    ]
    label: _query_int(  # type: ignore[valid-type]
        None,
        1,
        MAX_ID,
        "Only conversations carrying this label (its `id`); also filters `counts`. A label that does not exist "
        "matches nothing.",
    )
    unread: Annotated[
        bool | None,
        BeforeValidator(_unread),
        WithJsonSchema({"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}),
        Field(
            default=None,
            description="`true`/`1`/`yes`: only conversations with unread customer messages; `false`/`0`/`no`: "
            "only fully read ones; empty or absent: both. Case-insensitive, surrounding spaces ignored.",
        ),
    ]


class ThreadQuery(BaseModel):
    """`GET /conversaciones/{id}/mensajes`: a page of the thread, backwards from `before`."""

    model_config = ConfigDict(extra="ignore")

    limit: _query_int(  # type: ignore[valid-type]
        DEFAULT_MESSAGE_LIMIT, 1, MAX_MESSAGE_LIMIT, "Messages per page. Digits only; empty means the default."
    )
    before: _query_int(  # type: ignore[valid-type]
        None,
        1,
        MAX_BIG_ID,
        "A message id from `next_cursor`: the page ends just before that message. It must be a message of "
        "this conversation (else 400 with `parameter: before`).",
    )


def _required_text(value: Any) -> Any:
    """Required query text: trimmed; absent or empty is refused."""
    value = _first_value(value)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        raise PydanticCustomError("required", "is required (1 to 200 characters).")
    return value


MAX_SEARCH_CHARS = 200
DEFAULT_SEARCH_PER_PAGE = 20


class MessageSearchQuery(BaseModel):
    """`GET /mensajes`: full-text search over what was said."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[
        Annotated[str, Field(min_length=1, max_length=MAX_SEARCH_CHARS), AfterValidator(_no_nul)],
        BeforeValidator(_required_text),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_CHARS, "pattern": r"^[^\u0000]*$"}),
        Field(
            description="Words to find in message texts, captions, document file names and private notes: every "
            "word must appear, in any case, with or without accents, in any form of the word (Spanish stemming: "
            "`factura` finds `facturas`); the last word also matches as a prefix (from 3 letters). Surrounding "
            "spaces are trimmed; 1–200 characters after that, at least one letter or digit, no NUL characters."
        ),
    ]
    page: _query_int(1, 1, MAX_PAGE, "1-based page number. Digits only; empty means the default.")  # type: ignore[valid-type]
    per_page: _query_int(  # type: ignore[valid-type]
        DEFAULT_SEARCH_PER_PAGE, 1, MAX_PER_PAGE, "Messages per page. Digits only; empty means the default."
    )


class CannedResponseQuery(BaseModel):
    """`GET /respuestas`: optionally those whose short code or text starts with `q`."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[
        SearchText,
        Field(
            description="Keep those whose short code or text starts with this (case-insensitive; `%` and `_` are "
            "literal). At most 100 characters, no NUL."
        ),
    ]


def _query_date(value: Any) -> Any:
    """A required local date, exactly `YYYY-MM-DD` (no timestamps, no other spellings)."""
    value = _first_value(value)
    if value is None or value == "":
        raise PydanticCustomError("required", "is required (a YYYY-MM-DD date).")
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise PydanticCustomError("date", "must be a YYYY-MM-DD date.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date", "is not a date of the calendar.") from None


def _report_date(description: str) -> Any:
    return Annotated[
        date,
        BeforeValidator(_query_date),
        WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
        Field(description=description),
    ]


class ReportQuery(BaseModel):
    """`GET /informes` and `/informes.csv`: the range of local dates, both included."""

    model_config = ConfigDict(extra="ignore")

    desde: _report_date(  # type: ignore[valid-type]
        "The first local date of the business time zone (included)."
    )
    hasta: _report_date(  # type: ignore[valid-type]
        "The last local date (included): not before `desde` (else 400 `invalid_range`), at most 366 days "
        "after counting both (else 400 `range_too_long`)."
    )


# --- bodies --------------------------------------------------------------------------------


class SendText(BaseModel):
    """Free text: only while the customer's 24-hour window is open."""

    type: Literal["text"]
    text: AgentText
    reply_to: Annotated[MessageId | None, Field(description="The `id` of a message of this conversation to quote.")] = (
        None
    )


class LanguageCode(BaseModel):
    """Graph's own shape for a template language."""

    code: Name


class TemplateRef(BaseModel):
    name: Annotated[Name, Field(description="An approved template (`flask --app wsgi templates sync`).")]
    language: Annotated[
        Name | LanguageCode, Field(description='A language code (default `es`) or Graph\'s own `{"code": "es"}`.')
    ] = "es"
    parameters: Annotated[
        dict[Name, Annotated[StrictStr | StrictInt | StrictFloat, AfterValidator(lambda v: _no_nul(str(v)))]],
        Field(
            description="Every placeholder of the template, as `header.<n>`, `body.<n>` or `button.<index>.<n>` "
            "(names as in the template), to non-blank text.",
            examples=[{"body.1": "Ana", "body.2": "#123"}],
        ),
    ] = {}

    @property
    def language_code(self) -> str:
        return self.language if isinstance(self.language, str) else self.language.code


class SendTemplate(BaseModel):
    """An approved template (synced from Meta): at any time."""

    type: Literal["template"]
    template: TemplateRef
    reply_to: Annotated[MessageId | None, Field(description="The `id` of a message of this conversation to quote.")] = (
        None
    )


class SendRequest(RootModel[Annotated[SendText | SendTemplate, Field(discriminator="type")]]):
    """A free-text message or an approved template, optionally quoting a message of the conversation."""


def _form_text(value: Any) -> Any:
    """A form field: empty means not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PydanticUseDefault()
    return value


def _form_digits(value: Any) -> Any:
    value = _form_text(value)
    if not (isinstance(value, str) and value.isascii() and value.strip().isdigit()):
        raise PydanticCustomError("whole_number", "must be a whole number.")
    return int(value)


_LIMITS_TEXT = "; ".join(f"{kind} {formats} ≤ {human_size(limit)}" for kind, formats, limit in LIMITS)


class SendMediaForm(BaseModel):
    """`multipart/form-data`: a file to send as an image, video, audio, document or sticker — its
    type is judged by its content, not by its name — with an optional caption."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    file: Annotated[
        Any,
        WithJsonSchema(
            {
                "type": "string",
                "format": "binary",
                "contentMediaType": "application/octet-stream",
                "description": f"The file. Accepted: {_LIMITS_TEXT}. An empty file is 400 `empty_file`, a "
                "larger one 413 `file_too_large`, another type 415 `unsupported_media_type`, a name whose "
                "extension says another type than the content 415 `media_type_mismatch`. A WebM/Opus "
                "recording (what Chromium's MediaRecorder makes) is converted to OGG/Opus and sent as a voice "
                "message; WebM video is refused.",
            }
        ),
    ]
    caption: Annotated[
        Annotated[StrictStr, Field(max_length=MAX_CAPTION_CHARS), AfterValidator(_no_nul)] | None,
        BeforeValidator(_form_text),
        WithJsonSchema({"type": "string", "maxLength": MAX_CAPTION_CHARS}),
        Field(
            description=f"At most {MAX_CAPTION_CHARS} characters, for an image, a video or a document (400 "
            "`caption_not_allowed` for audio and stickers). Empty means none."
        ),
    ] = None
    filename: Annotated[
        Annotated[StrictStr, Field(max_length=MAX_FILENAME_CHARS), AfterValidator(_no_nul)] | None,
        BeforeValidator(_form_text),
        WithJsonSchema({"type": "string", "maxLength": MAX_FILENAME_CHARS}),
        Field(
            description="A document's name as the customer sees it (default: the uploaded file's name; the "
            "format's extension is added when it has none). Ignored for other types."
        ),
    ] = None
    reply_to: Annotated[
        Annotated[int, Field(ge=1, le=MAX_BIG_ID)] | None,
        BeforeValidator(_form_digits),
        WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,19}$"}),
        Field(description="The `id` of a message of this conversation to quote."),
    ] = None


class ConversationPatch(BaseModel):
    """`PATCH /conversaciones/{id}`: any of the fields, all or nothing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    status: Annotated[
        Literal[CONVERSATION_STATUSES] | None,  # type: ignore[valid-type]
        WithJsonSchema({"type": "string", "enum": list(CONVERSATION_STATUSES)}),
    ] = None
    assignee: Annotated[
        AgentId | None,
        WithJsonSchema(
            {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "An active agent's id, or null to unassign.",
            }
        ),
    ] = None
    unread: Annotated[
        StrictBool | None,
        AfterValidator(lambda v: _only_true(v)),
        WithJsonSchema({"const": True, "description": "Mark unread again (POST …/leido marks read)."}),
    ] = None
    labels: Annotated[
        list[LabelId] | None,
        Field(
            max_length=MAX_LABELS_PER_CONVERSATION,
            description="The conversation's labels afterwards (their ids; `[]` removes every label). An id that is "
            "no label answers 400 `unknown_labels` naming it, and nothing changes.",
        ),
        WithJsonSchema(
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "maxItems": MAX_LABELS_PER_CONVERSATION,
            }
        ),
    ] = None

    snoozed_until: SnoozedUntil = None

    @model_validator(mode="after")
    def _something(self) -> ConversationPatch:
        if not self.model_fields_set:
            raise PydanticCustomError("empty", "Send at least one of: status, assignee, unread, labels, snoozed_until.")
        if "snoozed_until" in self.model_fields_set and self.status not in (None, "snoozed"):
            raise PydanticCustomError("snoozed_until", "'snoozed_until' goes only with the status snoozed.")
        if "labels" in self.model_fields_set and self.labels is None:
            raise PydanticCustomError("labels", "'labels' must be a list of label ids.")
        if "status" in self.model_fields_set and self.status is None:
            raise PydanticCustomError("status", f"'status' must be one of {', '.join(CONVERSATION_STATUSES)}.")
        return self


def _only_true(value: bool | None) -> bool | None:
    if value is not True:
        raise PydanticCustomError("unread", "can only be true (mark unread); POST …/leido marks the conversation read.")
    return value


class NoteRequest(BaseModel):
    """`POST /conversaciones/{id}/notas`: a private note for agents."""

    model_config = ConfigDict(extra="forbid")

    text: AgentText


def _single_emoji(value: str) -> str:
    if not is_single_emoji(value):
        raise PydanticCustomError("single_emoji", "must be exactly one emoji, such as 👍 or ❤️.")
    return value


class ReactionRequest(BaseModel):
    """`PUT /conversaciones/{id}/mensajes/{message_id}/reaccion`: the business's reaction."""

    model_config = ConfigDict(extra="forbid")

    emoji: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=32,
            description="Exactly one emoji (skin tones, flags and ZWJ sequences count as one), as in Unicode's "
            "emoji data; no text, no spaces, not two.",
            examples=["👍", "❤️", "🙏🏽"],
        ),
        AfterValidator(_single_emoji),
    ]


class CannedResponseRequest(BaseModel):
    """`POST /respuestas`: a canned response."""

    model_config = ConfigDict(extra="forbid")

    short_code: Annotated[
        StrictStr,
        Field(
            pattern=r"^[A-Za-z0-9_-]{1,32}$",
            description="1–32 letters, digits, `_` or `-`; stored lower-case, unique whatever the case.",
        ),
    ]
    text: AgentText


# The team's name for a contact: not blank, trimmed, no NUL.
ContactName = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_DISPLAY_NAME_CHARS,
        json_schema_extra={"pattern": r"\S"},
        description=f"Not blank, at most {MAX_DISPLAY_NAME_CHARS} characters; surrounding spaces are trimmed.",
    ),
    AfterValidator(_not_blank),
    AfterValidator(_no_nul),
    AfterValidator(str.strip),
]


class StartConversationRequest(BaseModel):
    """`POST /conversaciones`: a new conversation with a contact, opened by an approved template."""

    model_config = ConfigDict(extra="forbid")

    phone: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=64,
            description="The customer's number as people type it: `+34 612 34 56 78`, `0034 612 34 56 78`, or a "
            "national number of `DEFAULT_PHONE_REGION` (`612 345 678` in Spain).",
            examples=["+34 612 34 56 78"],
        ),
        AfterValidator(_no_nul),
    ]
    name: Annotated[
        ContactName | None, Field(description="The team's name for the contact (its `display_name`), optional.")
    ] = None
    template: Annotated[
        TemplateRef,
        Field(description="The first message: an approved template, as when sending one (`POST …/mensajes`)."),
    ]


def _attribute_key(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("attribute_key", "attribute names must not be blank.")
    return value


AttributeKey = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_ATTRIBUTE_KEY_CHARS),
    AfterValidator(_no_nul),
    AfterValidator(_attribute_key),
]
AttributeValue = Annotated[StrictStr, Field(max_length=MAX_ATTRIBUTE_VALUE_CHARS), AfterValidator(_no_nul)]


class ContactPatch(BaseModel):
    """`PATCH /contactos/{id}`: any of the team's fields, all or nothing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    display_name: Annotated[
        ContactName | None,
        Field(description="The team's name for the contact; null clears it (WhatsApp's profile name shows again)."),
    ] = None
    notes: Annotated[
        Annotated[StrictStr, Field(max_length=MAX_NOTES_CHARS), AfterValidator(_no_nul)] | None,
        Field(
            description=f"Free-form notes about the contact, at most {MAX_NOTES_CHARS:,} characters; null or empty "
            "clears them."
        ),
    ] = None
    attributes: Annotated[
        dict[AttributeKey, AttributeValue],
        Field(
            max_length=MAX_ATTRIBUTES,
            description=f"The custom attributes, key → value, replacing the stored ones entirely: at most "
            f"{MAX_ATTRIBUTES} keys of 1–{MAX_ATTRIBUTE_KEY_CHARS} characters (trimmed), values of at most "
            f"{MAX_ATTRIBUTE_VALUE_CHARS} characters. `{{}}` removes them all.",
            examples=[{"cliente desde": "2021", "ciudad": "Sevilla"}],
        ),
    ] = {}

    @model_validator(mode="after")
    def _something(self) -> ContactPatch:
        if not self.model_fields_set:
            raise PydanticCustomError("empty", "Send at least one of: display_name, notes, attributes.")
        if "attributes" in self.model_fields_set and self.attributes is None:
            raise PydanticCustomError("attributes", "'attributes' must be an object of strings; {} removes them all.")
        return self


LabelName = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_LABEL_NAME_CHARS,
        json_schema_extra={"pattern": r"\S", "not": {"pattern": r"\u0000"}},
        description=f"1–{MAX_LABEL_NAME_CHARS} characters; surrounding spaces are trimmed. Unique whatever the case.",
    ),
    AfterValidator(_not_blank),
    AfterValidator(_no_nul),
]
LabelColor = Annotated[
    StrictStr,
    Field(
        pattern=r"^#[0-9A-Fa-f]{6}$",
        description="`#rrggbb` (stored lower-case); names such as `red` and short forms such as `#f00` are refused.",
        examples=["#1f883d"],
    ),
]


class LabelRequest(BaseModel):
    """`POST /etiquetas`: a new label (admins)."""

    model_config = ConfigDict(extra="forbid")

    name: LabelName
    color: LabelColor


class LabelPatch(BaseModel):
    """`PATCH /etiquetas/{id}`: rename and/or recolour a label (admins)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: LabelName | None = None
    color: LabelColor | None = None

    @model_validator(mode="after")
    def _something(self) -> LabelPatch:
        if self.name is None and self.color is None:
            raise PydanticCustomError("empty", "Send at least one of: name, color.")
        return self


BulkAction = Literal[
    "assign", "unassign", "resolve", "reopen", "pending", "snooze", "label", "unlabel", "read", "unread"
]


class BulkRequest(BaseModel):
    """`POST /conversaciones/lote`: one action on several conversations, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    ids: Annotated[
        list[ConversationId],
        Field(
            min_length=1,
            max_length=MAX_BULK_IDS,
            description=f"1–{MAX_BULK_IDS} conversation ids (a repeated id counts once). One that does not exist "
            "answers 404 naming it (`unknown`), and nothing changes.",
        ),
    ]
    action: Annotated[
        BulkAction,
        Field(
            description="`assign` (with `assignee_id`), `unassign`, `resolve`, `reopen` (also wakes snoozed ones), "
            "`pending`, `snooze` (with `snoozed_until`, or without: until the customer writes), `label` / `unlabel` "
            "(with `label_id`), `read` (also sends WhatsApp read receipts), `unread`."
        ),
    ]
    assignee_id: Annotated[AgentId | None, Field(description="For `assign`: an active agent's id.")] = None
    label_id: Annotated[LabelId | None, Field(description="For `label` and `unlabel`: a label's id.")] = None
    snoozed_until: SnoozedUntil = None

    @model_validator(mode="after")
    def _arguments(self) -> BulkRequest:
        if self.snoozed_until is not None and self.action != "snooze":
            raise PydanticCustomError("snoozed_until", "'snoozed_until' goes only with the action snooze.")
        if self.action == "assign" and self.assignee_id is None:
            raise PydanticCustomError("assignee_id", "'assignee_id' is required to assign.")
        if self.action in ("label", "unlabel") and self.label_id is None:
            raise PydanticCustomError("label_id", "'label_id' is required to label or unlabel.")
        if self.assignee_id is not None and self.action != "assign":
            raise PydanticCustomError("assignee_id", "'assignee_id' goes only with the action assign.")
        if self.label_id is not None and self.action not in ("label", "unlabel"):
            raise PydanticCustomError("label_id", "'label_id' goes only with the actions label and unlabel.")
        return self


_HHMM = Annotated[
    StrictStr,
    Field(
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
        description='"HH:MM" in the business time zone; "24:00" only as an end (the end of the day).',
    ),
]
_OpeningInterval = Annotated[
    list[_HHMM], Field(min_length=2, max_length=2, description='["start", "end"], end > start.')
]
_OpeningDay = Annotated[
    list[_OpeningInterval],
    Field(max_length=12, description="Sorted, non-overlapping intervals (touching is allowed); [] is closed all day."),
]
_AutoText = Annotated[
    StrictStr,
    AfterValidator(_no_nul),
    Field(max_length=MAX_TEXT_CHARS, json_schema_extra={"not": {"pattern": r"\u0000"}}),
]


class OpeningWeek(BaseModel):
    """The opening intervals of each weekday; an interval never crosses midnight (Monday 22:00 to
    Tuesday 02:00 is `mon: [["22:00", "24:00"]]` and `tue: [["00:00", "02:00"]]`)."""

    model_config = ConfigDict(extra="forbid")

    mon: _OpeningDay
    tue: _OpeningDay
    wed: _OpeningDay
    thu: _OpeningDay
    fri: _OpeningDay
    sat: _OpeningDay
    sun: _OpeningDay


class BusinessHoursRequest(BaseModel):
    """`PUT /horario`: the whole settings (what is left out takes its default)."""

    model_config = ConfigDict(extra="forbid")

    time_zone: Annotated[
        StrictStr, Field(min_length=1, max_length=64, description="An IANA time zone.", examples=["Europe/Madrid"])
    ]
    week: OpeningWeek
    holidays: Annotated[
        list[Annotated[StrictStr, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]],
        Field(max_length=1000, description="Local dates closed all day, `YYYY-MM-DD`."),
    ] = []
    enabled: Annotated[StrictBool, Field(description="The hours are in force (false: always open, no away reply).")]
    away_message: Annotated[
        _AutoText, Field(description="Sent once per closed period per conversation; not blank while `enabled`.")
    ] = ""
    greeting_enabled: StrictBool = False
    greeting_message: Annotated[
        _AutoText,
        Field(description="Sent for a customer's first message ever (the away message instead while closed)."),
    ] = ""


# --- where each model is used --------------------------------------------------------------

# Each validated operation (by its OpenAPI operationId) and its (query, body) models. The views
# declare `@accepts("<operationId>")`; app/api/docs.py documents the same models.
# --- the agent's own preferences and mentions ---------------------------------------------------


def _time_zone(value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or valid_time_zone(value) is None):
        raise PydanticCustomError("time_zone", "must be an IANA time zone such as Europe/Madrid, or null.")
    return value


class AgentPreferencesPatch(BaseModel):
    """`PATCH /yo`: any of the caller's own preferences, all or nothing (name, e-mail and role are
    the admins' to change)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    language: Annotated[
        Literal[LANGUAGES] | None,  # type: ignore[valid-type]
        WithJsonSchema(
            {
                "type": ["string", "null"],
                "enum": [*LANGUAGES, None],
                "description": "The pages' language; null follows the browser.",
            }
        ),
    ] = None
    time_zone: Annotated[
        StrictStr | None,
        BeforeValidator(_time_zone),
        WithJsonSchema(
            {
                "type": ["string", "null"],
                "maxLength": 64,
                "examples": ["Europe/Madrid"],
                "description": "An IANA time zone; null follows the browser.",
            }
        ),
    ] = None
    notify_desktop: Annotated[
        StrictBool | None,
        WithJsonSchema({"type": "boolean", "description": "Browser notifications (the browser must allow them)."}),
    ] = None
    notify_sound: Annotated[
        StrictBool | None, WithJsonSchema({"type": "boolean", "description": "A short sound with each notification."})
    ] = None
    notify_scope: Annotated[
        Literal[NOTIFY_SCOPES] | None,  # type: ignore[valid-type]
        WithJsonSchema(
            {
                "type": "string",
                "enum": list(NOTIFY_SCOPES),
                "description": "`mine_and_unassigned`: new customer messages in conversations assigned to the caller "
                "or to nobody; `all`: in every conversation.",
            }
        ),
    ] = None

    @model_validator(mode="after")
    def _something(self) -> AgentPreferencesPatch:
        if not self.model_fields_set:
            raise PydanticCustomError("empty", "Send at least one of: " + ", ".join(EDITABLE_PREFERENCES) + ".")
        for name in ("notify_desktop", "notify_sound", "notify_scope"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise PydanticCustomError("null", f"'{name}' cannot be null.")
        return self


class MentionListQuery(BaseModel):
    """`GET /menciones`: the caller's mentions, a page at a time."""

    model_config = ConfigDict(extra="ignore")

    page: _query_int(1, 1, MAX_PAGE, "1-based page number. Digits only; empty means the default.")  # type: ignore[valid-type]
    per_page: _query_int(  # type: ignore[valid-type]
        DEFAULT_MENTIONS_PER_PAGE, 1, MAX_PER_PAGE, "Mentions per page. Digits only; empty means the default."
    )
    unread: Annotated[
        bool | None,
        BeforeValidator(_unread),
        WithJsonSchema({"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}),
        Field(default=None, description="`true`: only unread mentions; otherwise all of them, unread first."),
    ]


INPUTS: dict[str, tuple[type[BaseModel] | None, type[BaseModel] | None]] = {
    "listConversations": (ConversationListQuery, None),
    "listMessages": (ThreadQuery, None),
    "sendMessage": (None, SendRequest),
    "updateConversation": (None, ConversationPatch),
    "addNote": (None, NoteRequest),
    "setReaction": (None, ReactionRequest),
    "listCannedResponses": (CannedResponseQuery, None),
    "searchMessages": (MessageSearchQuery, None),
    "createCannedResponse": (None, CannedResponseRequest),
    "startConversation": (None, StartConversationRequest),
    "updateContact": (None, ContactPatch),
    "createLabel": (None, LabelRequest),
    "updateLabel": (None, LabelPatch),
    "bulkUpdateConversations": (None, BulkRequest),
    "updateBusinessHours": (None, BusinessHoursRequest),
    "updateMe": (None, AgentPreferencesPatch),
    "listMentions": (MentionListQuery, None),
    "getReport": (ReportQuery, None),
    "getReportCsv": (ReportQuery, None),
}
