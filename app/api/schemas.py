"""What the API accepts, declared once: pydantic models for query strings and JSON bodies.

The models are the validation (spectree runs them before a view, see `app/api/validation.py`),
the documentation (they are the OpenAPI schemas) and the types the views receive. They are
strict where the API always was: integers in a query string are ASCII digits only ("²",
"1.0", "+1" are refused), booleans are not integers in bodies, text never holds NUL
characters, and unknown body fields are refused where they always were.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
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
from app.models.conversations import CONVERSATION_STATUSES
from app.whatsapp.rules import MAX_TEXT_CHARS

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
DEFAULT_MESSAGE_LIMIT = 30
MAX_MESSAGE_LIMIT = 100
MAX_QUERY_CHARS = 100


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
    return Annotated[
        int | None if default is None else int,
        BeforeValidator(_query_digits),
        Field(default=default, ge=minimum, le=maximum, description=description),
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
MessageId = Annotated[StrictInt, Field(ge=1, le=MAX_BIG_ID)]


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
    Field(default=None),
]


class ConversationListQuery(BaseModel):
    """`GET /conversaciones`: paging and the list's filters."""

    model_config = ConfigDict(extra="ignore")

    page: _query_int(1, 1, MAX_PAGE, "1-based page number.")  # type: ignore[valid-type]
    per_page: _query_int(DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, "Conversations per page.")  # type: ignore[valid-type]
    status: Annotated[
        tuple[str, ...],
        BeforeValidator(_statuses),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": r"^\s*(all|\s*(open|pending|resolved)?\s*(,\s*(open|pending|resolved)?\s*)*)\s*$",
                "default": "all",
            }
        ),
        Field(
            default=(),
            description="`open`, `pending`, `resolved`, several of them comma-separated, or `all` (the default).",
        ),
    ]
    assignee: Annotated[
        str | int,
        BeforeValidator(_assignee),
        WithJsonSchema({"type": "string"}),
        Field(default="all", description="`me`, `unassigned`, an agent id, or `all` (the default)."),
    ]
    q: Annotated[SearchText, Field(description="Part of the contact's name or number (≤ 100 characters).")]
    unread: Annotated[
        bool | None,
        BeforeValidator(_unread),
        WithJsonSchema({"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}),
        Field(default=None, description="Only unread (`true`) or only read (`false`) conversations."),
    ]


class ThreadQuery(BaseModel):
    """`GET /conversaciones/{id}/mensajes`: a page of the thread, backwards from `before`."""

    model_config = ConfigDict(extra="ignore")

    limit: _query_int(DEFAULT_MESSAGE_LIMIT, 1, MAX_MESSAGE_LIMIT, "Messages per page.")  # type: ignore[valid-type]
    before: _query_int(  # type: ignore[valid-type]
        None, 1, MAX_BIG_ID, "A message id (`next_cursor` of the previous page): the page ends before it."
    )


class CannedResponseQuery(BaseModel):
    """`GET /respuestas`: optionally those whose short code or text starts with `q`."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[SearchText, Field(description="A prefix of the short code or the text (≤ 100 characters).")]


# --- bodies --------------------------------------------------------------------------------


class SendText(BaseModel):
    """Free text: only while the customer's 24-hour window is open."""

    type: Literal["text"]
    text: Annotated[AgentText, Field(description="1–4,096 characters.")]
    reply_to: Annotated[MessageId | None, Field(description="The id of a message in this conversation to quote.")] = (
        None
    )


class LanguageCode(BaseModel):
    """Graph's own shape for a template language."""

    code: Name


class TemplateRef(BaseModel):
    name: Name
    language: Annotated[Name | LanguageCode, Field(description="The template's language code.")] = "es"
    parameters: Annotated[
        dict[Name, Annotated[StrictStr | StrictInt | StrictFloat, AfterValidator(lambda v: _no_nul(str(v)))]],
        Field(description='Every placeholder of the template filled: `{"header.1", "body.1", "button.0.1", …}`.'),
    ] = {}

    @property
    def language_code(self) -> str:
        return self.language if isinstance(self.language, str) else self.language.code


class SendTemplate(BaseModel):
    """An approved template (synced from Meta): at any time."""

    type: Literal["template"]
    template: TemplateRef
    reply_to: Annotated[MessageId | None, Field(description="The id of a message in this conversation to quote.")] = (
        None
    )


class SendRequest(RootModel[Annotated[SendText | SendTemplate, Field(discriminator="type")]]):
    """`POST /conversaciones/{id}/mensajes`."""


class ConversationChange(BaseModel):
    """`PATCH /conversaciones/{id}`: any of the fields, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    status: Literal[CONVERSATION_STATUSES] | None = None  # type: ignore[valid-type]
    assignee: Annotated[AgentId | None, Field(description="An active agent's id, or null to unassign.")] = None
    unread: Annotated[
        StrictBool | None,
        AfterValidator(lambda v: _only_true(v)),
        WithJsonSchema({"const": True, "description": "`true` marks the conversation unread again."}),
    ] = None

    @model_validator(mode="after")
    def _something(self) -> ConversationChange:
        if not self.model_fields_set:
            raise PydanticCustomError("empty", "Send at least one of: status, assignee, unread.")
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

    text: Annotated[AgentText, Field(description="1–4,096 characters.")]


class CannedResponseRequest(BaseModel):
    """`POST /respuestas`: a canned response."""

    model_config = ConfigDict(extra="forbid")

    short_code: Annotated[
        StrictStr,
        Field(
            pattern=r"^[A-Za-z0-9_-]{1,32}$",
            description="1–32 of `a-z 0-9 _ -`, stored lower-case; unique whatever the case.",
        ),
    ]
    text: Annotated[AgentText, Field(description="1–4,096 characters.")]
