"""What the app answers in JSON, declared as pydantic models (so far: the errors and the
conversations; the message shape is still in openapi.yaml).

`app/api/errors.py` builds the error bodies (the one `error_response()`), `app/api/sending.py`
the send failure, the serialisers and views the rest; the models describe those dicts exactly
and are the OpenAPI schemas of the same names (`app/api/docs.py`). They are documentation and
type, not a second serialiser.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.models.conversations import CONVERSATION_STATUSES
from app.models.messages import DIRECTIONS


def _component(name: str) -> WithJsonSchema:
    """A schema still written in openapi.yaml; app/api/docs.py turns the marker into its $ref."""
    return WithJsonSchema({"x-component": name})


class _Closed(BaseModel):
    # Closed objects: a renamed or added field fails tests/test_openapi.py.
    model_config = ConfigDict(extra="forbid")


class Error(_Closed):
    """Every error answer in JSON (the webhook handshake's 403 is plain text)."""

    error: Annotated[
        str,
        Field(
            description="A stable code: `invalid_parameter`, `unauthorized`, `not_found`, `database_unavailable`, "
            "`internal_error`, `invalid_body`, `signature_missing`, `signature_invalid`, `rate_limited`, "
            "`media_expired`, or Werkzeug's HTTP reason in snake_case such as `request_entity_too_large` or "
            "`method_not_allowed`."
        ),
    ]
    message: Annotated[str, Field(description="A sentence for people; may change.")]
    parameter: Annotated[
        str | None,
        WithJsonSchema(
            {"type": "string", "description": "With `invalid_parameter` only, the name of the query parameter."}
        ),
    ] = None


class MissingParametersError(_Closed):
    """A template's placeholders that were not filled (`missing_parameters`)."""

    error: Literal["missing_parameters"]
    message: str
    missing: Annotated[
        list[str],
        Field(min_length=1, description="Placeholder names as in `template.parameters`, e.g. `body.2`."),
    ]


class WindowClosedError(_Closed):
    """Free text refused before calling Graph because the 24-hour window is closed."""

    error: Literal["window_closed"]
    message: str
    window_expires_at: Annotated[
        datetime | None, Field(description="When the window closed; null when the customer never wrote.")
    ]


class GraphErrorDetail(_Closed):
    """Meta's error, as Graph gave it."""

    code: Annotated[
        int | None,
        Field(
            description="Meta's error code (190 expired token, 131047 window closed, …); null when Graph could "
            "not be reached or answered no error object."
        ),
    ]
    title: str
    details: str | None
    fbtrace_id: Annotated[str | None, Field(description="Meta's trace id, for Meta's support.")]


class SendFailure(_Closed):
    """Graph did not accept the message; it is stored as `failed`."""

    error: Annotated[
        Literal["window_closed", "graph_error"],
        Field(description="`window_closed` for Meta's error 131047 (send a template instead)."),
    ]
    message: str
    graph_error: GraphErrorDetail
    message_id: Annotated[int, Field(description="The failed message's id, for `/reintentar`.")]
    stored_message: Annotated[dict[str, Any], _component("Message")]


class MediaFailure(_Closed):
    """Graph did not hand over the file."""

    error: Literal["graph_error"]
    message: str
    graph_error: GraphErrorDetail


class WebhookReceipt(_Closed):
    """What the webhook answers Meta once a delivery is committed."""

    status: Literal["ok"]
    outcome: Annotated[
        Literal["stored", "partial", "duplicate"],
        Field(
            description="`stored`: everything usable was stored. `partial`: stored what could be parsed; the "
            "problems are kept with the raw delivery. `duplicate`: this exact body was already committed, "
            "nothing was applied again (all counters are 0)."
        ),
    ]
    messages_stored: Annotated[int, Field(ge=0, description="Messages new to the database.")]
    messages_duplicate: Annotated[
        int, Field(ge=0, description="Messages whose `wamid` was already stored (Meta's redeliveries).")
    ]
    statuses_applied: Annotated[
        int,
        Field(ge=0, description="Statuses for a stored message (applied unless they would move it backwards)."),
    ]
    statuses_waiting: Annotated[
        int, Field(ge=0, description="Statuses for a message not stored yet; applied when it arrives.")
    ]


class Pagination(_Closed):
    page: Annotated[int, Field(ge=1)]
    per_page: Annotated[int, Field(ge=1, le=100)]
    total: Annotated[
        int, Field(ge=0, description="Conversations in the chosen `assignee` tab under the other filters.")
    ]
    pages: Annotated[int, Field(ge=0, description="ceil(total / per_page); 0 when there is nothing.")]


class Counts(_Closed):
    """The size of each tab under the `status`, `unread` and `q` filters (not `assignee`)."""

    mine: Annotated[int, Field(ge=0, description="Assigned to the caller.")]
    unassigned: Annotated[int, Field(ge=0)]
    all: Annotated[int, Field(ge=0)]


class ReadResult(_Closed):
    unread_count: Literal[0]
    read_receipt: Annotated[
        Literal["sent", "failed", "not_needed"],
        Field(
            description="`sent`: Meta accepted the read receipt; `failed`: Graph refused it or could not be "
            "reached (logged; the local read stands); `not_needed`: nothing the customer wrote was unread, so "
            "no receipt was sent."
        ),
    ]


class AgentRef(_Closed):
    id: int
    name: str


class CannedResponse(_Closed):
    id: int
    short_code: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
    text: str
    created_by: Annotated[
        AgentRef | None, Field(description="The agent who saved it; null once that agent is deleted.")
    ]
    created_at: datetime


class CannedResponseList(_Closed):
    canned_responses: list[CannedResponse]


Preview = Annotated[str | None, Field(max_length=160)]
DeliveryStatus = Annotated[str | None, _component("DeliveryStatus")]


class Contact(_Closed):
    wa_id: Annotated[str | None, Field(description="The phone number without `+`, when Meta shares it.")]
    user_id: Annotated[str | None, Field(description="Meta's business-scoped user id (BSUID), when sent.")]
    name: Annotated[str | None, Field(description="The WhatsApp profile name.")]


class LastMessage(_Closed):
    """The newest message shown in the thread (reactions, edits and revokes excluded)."""

    id: int
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    type: str
    preview: Annotated[
        Preview,
        Field(
            description="The first 160 characters of the text or caption; null when none or when the message "
            "was deleted."
        ),
    ]
    sent_at: datetime
    status: DeliveryStatus
    deleted: bool


class LastAgentMessage(_Closed):
    """The newest outbound message."""

    id: int
    type: str
    preview: Preview
    sent_at: datetime
    status: DeliveryStatus
    agent: Annotated[
        AgentRef | None,
        Field(description="The agent who sent it; null for messages sent from the WhatsApp Business app."),
    ]


class ConversationSummary(_Closed):
    """A conversation as the list, the detail and a triage answer show it."""

    id: int
    display_name: Annotated[
        str, Field(description="The contact's profile name, else `+<wa_id>`, else the business-scoped user id.")
    ]
    contact: Contact
    status: Annotated[
        Literal[CONVERSATION_STATUSES],  # type: ignore[valid-type]
        Field(description="A new customer message reopens a resolved conversation."),
    ]
    assignee: AgentRef | None
    unread_count: Annotated[int, Field(ge=0, description="Unread customer messages, exact (not capped).")]
    last_message: Annotated[
        LastMessage | None,
        Field(
            description="The newest message shown in the thread (reactions, edits and revokes excluded); null "
            "when none."
        ),
    ]
    last_agent_message: Annotated[
        LastAgentMessage | None,
        Field(description="The newest outbound message; null when the business never wrote."),
    ]
    last_customer_message_at: Annotated[
        datetime | None,
        Field(description="The newest customer message, by Meta's clock; null when the customer never wrote."),
    ]
    window_expires_at: Annotated[
        datetime | None,
        Field(
            description="`last_customer_message_at` + 24 hours: WhatsApp's customer service window. Until then "
            "free-form replies are allowed; afterwards only approved templates. Null when the customer never wrote."
        ),
    ]
    last_activity_at: Annotated[
        datetime, Field(description="The newest message or event of any kind; the list's sort key.")
    ]
    updated_at: datetime


class MessagePage(_Closed):
    messages: Annotated[
        list[dict[str, Any]],
        WithJsonSchema({"type": "array", "description": "Oldest to newest.", "items": {"x-component": "Message"}}),
    ]
    next_cursor: Annotated[
        int | None,
        Field(
            ge=1,
            description="Pass as `before` for the previous (older) page; null when this is the oldest page.",
        ),
    ]


class ConversationList(_Closed):
    conversations: list[ConversationSummary]
    pagination: Pagination
    counts: Counts


class Template(_Closed):
    """A message template of the business account, as Meta describes it."""

    id: int
    name: Annotated[str, Field(examples=["pedido_listo"])]
    language: Annotated[str, Field(description="Meta's language code, e.g. `es` or `en_US`.")]
    category: Annotated[str | None, Field(description="`UTILITY`, `MARKETING` or `AUTHENTICATION`.")]
    status: Literal["APPROVED"]
    components: Annotated[
        list[dict[str, Any]],
        Field(
            description="Meta's components (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`) as synced, with `{{1}}` "
            "placeholders."
        ),
    ]
    placeholders: Annotated[
        list[str],
        Field(
            description="Every placeholder an agent must fill, as the keys of `template.parameters` when "
            "sending: `header.<n>`, `body.<n>`, `button.<index>.<n>`.",
            examples=[["header.1", "body.1", "body.2", "button.0.1"]],
        ),
    ]


# Documented under `components/schemas` by their class names (with the models they use).
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    MissingParametersError,
    WindowClosedError,
    SendFailure,
    MediaFailure,
    WebhookReceipt,
    ConversationList,
    ReadResult,
    CannedResponseList,
    Template,
    ConversationSummary,
    MessagePage,
)
