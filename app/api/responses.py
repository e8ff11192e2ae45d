"""What the app answers in JSON, declared as pydantic models (and the two schemas pydantic
cannot state as wanted, `JSON_SCHEMAS`).

`app/api/errors.py` builds the error bodies (the one `error_response()`), `app/api/sending.py`
the send failure, the serialisers and views the rest; the models describe those dicts exactly
and are the OpenAPI schemas of the same names (`app/api/docs.py`). They are documentation and
type, not a second serialiser.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.models.conversations import CONVERSATION_STATUSES
from app.models.messages import DELIVERY_STATUSES, DIRECTIONS
from app.whatsapp.payloads import MEDIA_TYPES


def _component(name: str) -> WithJsonSchema:
    """A schema of `JSON_SCHEMAS` or a model declared further down; app/api/docs.py turns the
    marker into its $ref."""
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


class UnknownIdsError(_Closed):
    """Ids in the body that name nothing (`unknown_labels`, `not_found`), or conversations an
    action cannot apply to (`nothing_to_mark_unread`). Nothing was changed."""

    error: Annotated[str, Field(examples=["unknown_labels", "not_found", "nothing_to_mark_unread"])]
    message: str
    unknown: Annotated[list[int], Field(min_length=1, description="The ids at fault.")]


class WindowClosedError(_Closed):
    """Free text refused before calling Graph because the 24-hour window is closed."""

    error: Literal["window_closed"]
    message: str
    window_expires_at: Annotated[
        datetime | None, Field(description="When the window closed; null when the customer never wrote.")
    ]


class FileTooLargeError(_Closed):
    """A file over WhatsApp's limit for its type, refused before anything is stored (`file_too_large`)."""

    error: Literal["file_too_large"]
    message: Annotated[str, Field(description="Names the type, its limit and the file's size; may change.")]
    limit_bytes: Annotated[int, Field(description="The limit that was passed, in bytes (MB = 1,048,576 bytes).")]
    size: Annotated[
        int | None, Field(description="The file's size in bytes (the request's, for an upload over 100 MB).")
    ]
    media_type: Annotated[
        Literal["image", "video", "audio", "document", "sticker"] | None,
        WithJsonSchema({"type": "string", "enum": ["image", "video", "audio", "document", "sticker"]}),
        Field(description="The WhatsApp type the content was judged to be; absent for an upload over 100 MB."),
    ] = None


class UnsupportedMediaError(_Closed):
    """A file WhatsApp does not take, judged by its content (`unsupported_media_type`), or whose name
    says another type (`media_type_mismatch`)."""

    error: Literal["unsupported_media_type", "media_type_mismatch"]
    message: str
    detected: Annotated[
        str | None, Field(description="The MIME type the content was judged to be; null when it is unknown.")
    ] = None
    video_codecs: Annotated[
        list[str] | None,
        Field(description="A video refused for its codecs: its video streams' codecs (FFmpeg's names, e.g. `hevc`)."),
    ] = None
    audio_codecs: Annotated[
        list[str] | None,
        Field(description="A video refused for its codecs: its sound tracks' codecs (e.g. `mp3float`)."),
    ] = None


class StickerDimensionsError(_Closed):
    """A sticker that is not 512 × 512 pixels, refused before anything is stored (`sticker_dimensions`)."""

    error: Literal["sticker_dimensions"]
    message: str
    width: Annotated[int | None, Field(description="The WebP's width in pixels; null when it cannot be read.")]
    height: Annotated[int | None, Field(description="The WebP's height in pixels; null when it cannot be read.")]


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
    stored_message: Annotated[dict[str, Any], _component("Message")]  # Message, declared below


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


LabelColor = Annotated[str, Field(pattern=r"^#[0-9a-f]{6}$", description="`#rrggbb`, lower-case.")]


class LabelRef(_Closed):
    """A label as each conversation carries it."""

    id: int
    name: str
    color: LabelColor


class Label(_Closed):
    id: int
    name: Annotated[str, Field(min_length=1, max_length=40, description="Unique whatever the case.")]
    color: LabelColor
    created_at: datetime


class LabelList(_Closed):
    labels: Annotated[list[Label], Field(description="Every label, by name (case-insensitive).")]


Preview = Annotated[str | None, Field(max_length=160)]
DeliveryStatus = Annotated[str | None, _component("DeliveryStatus")]


class Contact(_Closed):
    id: Annotated[int, Field(description="The contact's id: its profile is `GET /contactos/{id}`.")]
    wa_id: Annotated[str | None, Field(description="The phone number without `+`, when Meta shares it.")]
    user_id: Annotated[str | None, Field(description="Meta's business-scoped user id (BSUID), when sent.")]
    name: Annotated[str | None, Field(description="The WhatsApp profile name (the person's own).")]
    display_name: Annotated[
        str | None, Field(description="The team's name for the contact (`PATCH /contactos/{id}`); null when none.")
    ]


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
        str,
        Field(
            description="The team's name for the contact, else their WhatsApp profile name, else `+<wa_id>`, else "
            "the business-scoped user id."
        ),
    ]
    contact: Contact
    status: Annotated[
        Literal[CONVERSATION_STATUSES],  # type: ignore[valid-type]
        Field(description="A new customer message reopens a resolved conversation and wakes a snoozed one."),
    ]
    snoozed_until: Annotated[
        datetime | None,
        Field(
            description="While `status` is `snoozed`: when it wakes up by itself (null: when the customer writes). "
            "Null for any other status."
        ),
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
    labels: Annotated[list[LabelRef], Field(description="The conversation's labels, by name (case-insensitive).")]


class SenderCustomer(_Closed):
    type: Literal["customer"]


class SenderAgent(_Closed):
    type: Literal["agent"]
    agent: Annotated[
        AgentRef | None, Field(description="Null for messages sent from the WhatsApp Business app (echoes).")
    ]


class SenderSystem(_Closed):
    type: Literal["system"]


Sender = Annotated[
    SenderCustomer | SenderAgent | SenderSystem, Field(discriminator="type", description="Who wrote the message.")
]


class ReplyTo(_Closed):
    """The quoted message. All but `wamid` are null when the quoted message is not stored."""

    id: int | None
    wamid: str
    direction: Literal[DIRECTIONS] | None  # type: ignore[valid-type]
    type: str | None
    preview: Preview


class Reaction(_Closed):
    """The current reaction of one reactor (a later reaction replaces it; a removal clears it)."""

    emoji: str
    from_: Annotated[Literal["customer", "agent"], Field(alias="from")]
    agent_id: int | None
    sent_at: datetime


class MessageError(_Closed):
    """Meta's error for a failed or unsupported message."""

    code: int | None
    title: str | None
    details: str | None


class Media(_Closed):
    """The media of an image, video, audio, document or sticker (its caption is `text`)."""

    id: Annotated[
        str | None,
        Field(description="Meta's media id; download the file with `GET /whatsapp/api/media/{message_id}`."),
    ]
    mime_type: str | None
    sha256: str | None
    filename: Annotated[str | None, Field(description="Documents only.")]
    state: Annotated[
        Literal["pending", "stored", "expired", "corrupt", "failed", "pruned"] | None,
        Field(
            description="Our copy of the file: `pending` (being fetched from WhatsApp), `stored` (kept: served "
            "from our storage even after WhatsApp's 7 days), `expired` (gone from WhatsApp before we got it), "
            "`corrupt` (its checksum never matched), `failed` (WhatsApp kept failing), `pruned` (removed after "
            "MEDIA_RETENTION_DAYS); null when there is nothing to keep (e.g. outbound media)."
        ),
    ] = None
    voice: Annotated[bool, Field(description="An audio recorded as a voice note.")]
    animated: Annotated[bool, Field(description="An animated sticker.")]


class Location(_Closed):
    latitude: float | None
    longitude: float | None
    name: str | None
    address: str | None
    url: str | None


class ThreadEvent(_Closed):
    """What happened to the conversation (type `event`: direction `out`, sender `system`, no text)."""

    kind: Annotated[
        Literal["snoozed", "woke"], Field(description="`snoozed` (until `until`) or `woke` (the snooze ended, `by`).")
    ]
    until: Annotated[
        datetime | None, Field(description="For `snoozed`: when it wakes up; null: when the customer writes.")
    ]
    by: Annotated[
        Literal["time", "customer", "agent"] | None,
        Field(description="For `woke`: its time came, the customer wrote, or an agent set another status."),
    ]
    agent: Annotated[AgentRef | None, Field(description="The agent who snoozed or woke it; null for the others.")]


class SentTemplate(_Closed):
    """The template an agent sent (its text, placeholders filled, is `text`)."""

    name: str
    language: str | None


# Types whose content is a field of its own, present only for that type and while not deleted.
_OWN_FIELD_TYPES = ("location", "contacts", "interactive", "button", "order", "system", "event")
_MODELED_TYPES = ["text", "unsupported", "template", "note", *MEDIA_TYPES, *_OWN_FIELD_TYPES]


def _present(field: str) -> dict[str, Any]:
    """A type-specific field, documented as an object that is present (never null) or absent."""
    return {"x-component": field}


def _object(description: str) -> Any:
    return WithJsonSchema({"type": "object", "description": description})


def _message_rules() -> dict[str, Any]:
    """Which type-specific field goes with which `type` (JSON Schema 2020-12 conditionals)."""
    live = {"deleted": {"const": False}}
    kinds: dict[str, dict[str, Any]] = {
        "media": {"enum": list(MEDIA_TYPES)},
        **{name: {"const": name} for name in _OWN_FIELD_TYPES},
        "raw": {"not": {"enum": _MODELED_TYPES}},
    }
    return {
        "dependentSchemas": {
            "template": {"properties": {"type": {"const": "template"}}},
            **{field: {"properties": {"type": kind, **live}} for field, kind in kinds.items()},
        },
        "allOf": [
            {"if": {"properties": {"type": kind, **live}}, "then": {"required": [field]}}
            for field, kind in kinds.items()
        ],
    }


class Message(_Closed):
    """One message of the thread. The fields up to `received_at` are always present. The type-specific
    field (`media`, `location`, `contacts`, `interactive`, `button`, `order`, `system`, `event`, or `raw` for types
    the inbox does not model) is present only for its type and only while the message is not deleted.
    `template` is present on templates sent by agents; `referral` when the customer came from an ad."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_message_rules())

    id: Annotated[int, Field(ge=1, description="The message's id in the inbox; the thread's cursor.")]
    wamid: Annotated[str | None, Field(description="WhatsApp's message id.")]
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    sender: Sender
    type: Annotated[
        str,
        Field(
            description="Meta's message type: `text`, `image`, `video`, `audio`, `document`, `sticker`, "
            "`location`, `contacts`, `interactive`, `button`, `order`, `system`, `unsupported`, or any type "
            "Meta adds later; `template` for templates sent by agents, `note` for agents' private notes and `event` "
            "for what happened to the conversation (snoozed, woke up; see `event`)."
        ),
    ]
    text: Annotated[
        str | None,
        Field(description="The text, caption, chosen reply or contact names; null when none or when deleted."),
    ]
    reply_to: ReplyTo | None
    forwarded: bool
    reactions: list[Reaction]
    status: DeliveryStatus
    error: MessageError | None
    edited_at: Annotated[
        datetime | None, Field(description="When the customer last edited the message; `text` is the edited text.")
    ]
    deleted: Annotated[
        bool,
        Field(description="The customer deleted the message; `text` is null and no type-specific field is sent."),
    ]
    sent_at: Annotated[
        datetime, Field(description="Meta's timestamp (the customer's clock for inbound); orders the thread.")
    ]
    received_at: Annotated[datetime, Field(description="When the inbox stored it.")]
    template: Annotated[SentTemplate | None, WithJsonSchema(_present("SentTemplate"))] = None
    referral: Annotated[
        dict[str, Any] | None,
        _object("Meta's click-to-WhatsApp ad referral (`source_url`, `source_type`, `headline`, …), as sent."),
    ] = None
    media: Annotated[Media | None, WithJsonSchema(_present("Media"))] = None
    location: Annotated[Location | None, WithJsonSchema(_present("Location"))] = None
    contacts: Annotated[
        list[dict[str, Any]] | None,
        WithJsonSchema(
            {"type": "array", "description": "Meta's shared contact cards, as sent.", "items": {"type": "object"}}
        ),
    ] = None
    interactive: Annotated[
        dict[str, Any] | None, _object("Meta's `interactive` object (button or list reply), as sent.")
    ] = None
    button: Annotated[dict[str, Any] | None, _object("Meta's `button` object (a template quick reply), as sent.")] = (
        None
    )
    order: Annotated[dict[str, Any] | None, _object("Meta's `order` object, as sent.")] = None
    system: Annotated[
        dict[str, Any] | None, _object("Meta's `system` object (e.g. the customer changed number), as sent.")
    ] = None
    raw: Annotated[
        dict[str, Any] | None,
        _object("The whole message object as Meta sent it, for types the inbox does not model."),
    ] = None
    event: Annotated[ThreadEvent | None, WithJsonSchema(_present("ThreadEvent"))] = None


class MessagePage(_Closed):
    messages: Annotated[list[Message], Field(description="Oldest to newest.")]
    next_cursor: Annotated[
        int | None,
        Field(
            ge=1,
            description="Pass as `before` for the previous (older) page; null when this is the oldest page.",
        ),
    ]


class SearchContact(_Closed):
    name: Annotated[str | None, Field(description="The WhatsApp profile name.")]
    phone: Annotated[str | None, Field(description="`+<wa_id>`, when Meta shares the number.")]


class SearchConversation(_Closed):
    """The conversation a found message belongs to."""

    id: int
    display_name: Annotated[
        str, Field(description="The contact's profile name, else `+<wa_id>`, else the business-scoped user id.")
    ]
    contact: SearchContact
    status: Literal[CONVERSATION_STATUSES]  # type: ignore[valid-type]


class FoundMessage(Message):
    """A message as the thread shows it, with its conversation and where the words matched."""

    conversation: SearchConversation
    snippet: Annotated[
        str,
        Field(
            description="HTML: up to two fragments of the text, caption or file name around the matches, every "
            "character of the message escaped (`<`, `>`, `&`, quotes) and only the matched words wrapped in "
            "`<mark>…</mark>`; safe to insert as HTML."
        ),
    ]


class SearchPagination(_Closed):
    page: Annotated[int, Field(ge=1)]
    per_page: Annotated[int, Field(ge=1, le=100)]
    total: Annotated[
        int,
        Field(
            ge=0,
            le=1000,
            description="Matching messages, counted up to 1,000: 1,000 means at least that many (type more words "
            "to narrow the search); pages end there.",
        ),
    ]
    pages: Annotated[int, Field(ge=0, description="ceil(total / per_page); 0 when nothing matches.")]


class MessageSearchResults(_Closed):
    messages: Annotated[list[FoundMessage], Field(description="Newest first.")]
    pagination: SearchPagination


class ConversationList(_Closed):
    conversations: list[ConversationSummary]
    pagination: Pagination
    counts: Counts


class ReceiptCounts(_Closed):
    """What `read` told WhatsApp, as `read_receipt` of POST …/leido, counted."""

    sent: Annotated[int, Field(ge=0)]
    failed: Annotated[int, Field(ge=0, description="Graph refused or could not be reached; the local read stands.")]
    not_needed: Annotated[int, Field(ge=0, description="Nothing the customer wrote was unread.")]


class BulkResult(_Closed):
    action: str
    updated: Annotated[int, Field(ge=1, description="Conversations changed (each id once).")]
    conversations: Annotated[
        list[ConversationSummary], Field(description="Their summaries after the change, in the order of `ids`.")
    ]
    read_receipts: Annotated[ReceiptCounts | None, Field(description="For `read` only; null otherwise.")]


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


class SendResult(_Closed):
    """A message Graph accepted."""

    message: Message


class AgentReaction(_Closed):
    """A reaction the business sent (or tried to): a message of its own, not shown in the thread."""

    id: int
    wamid: Annotated[str | None, Field(description="Meta's id for the reaction once Graph accepted it.")]
    emoji: Annotated[str | None, Field(description="The emoji; null for a removal.")]
    status: Annotated[
        str | None,
        WithJsonSchema(
            {
                "type": "string",
                "enum": list(DELIVERY_STATUSES),
                "description": "`accepted`, then `sent` (Meta reports no `delivered` or `read` for reactions), "
                "or `failed`.",
            }
        ),
    ]
    error: MessageError | None
    agent_id: int | None
    sent_at: datetime


class ReactionResult(_Closed):
    """The message reacted to, with its current reactions, and the reaction sent for this request
    (null when the business's reaction already was the one asked for: nothing was sent)."""

    message: Message
    reaction: AgentReaction | None


class ReactionFailure(_Closed):
    """Graph did not accept the reaction: it is kept as `failed` with Meta's error, and the
    message keeps the reaction it had."""

    error: Annotated[
        Literal["window_closed", "graph_error"],
        Field(description="`window_closed` for Meta's error 131047."),
    ]
    message: str
    graph_error: GraphErrorDetail
    reaction: AgentReaction
    stored_message: Annotated[Message, Field(description="The message reacted to, with its current reactions.")]


class StartResult(_Closed):
    """A conversation started with a template that Graph accepted."""

    conversation: ConversationSummary
    message: Message


class StartFailure(_Closed):
    """The conversation was created but Graph did not accept its first message (stored `failed`)."""

    error: Literal["graph_error"]
    message: str
    graph_error: GraphErrorDetail
    conversation_id: Annotated[int, Field(description="The new conversation, where the failed message can be retried.")]
    message_id: Annotated[int, Field(description="The failed message's id, for `/reintentar`.")]
    stored_message: Message


class ConversationExistsError(_Closed):
    """There already is a conversation with this contact on this business number."""

    error: Literal["conversation_exists"]
    message: str
    conversation_id: Annotated[int, Field(description="The existing conversation: open it and send there.")]


class ContactConversation(_Closed):
    """One conversation of a contact, for the profile's history."""

    id: int
    status: Literal[CONVERSATION_STATUSES]  # type: ignore[valid-type]
    business_number: Annotated[
        str | None, Field(description="The business number it is on, as Meta displays it (null when unknown).")
    ]
    unread_count: int
    last_activity_at: datetime
    last_message_preview: Annotated[str | None, Field(description="The first 160 characters of the newest message.")]


class ContactProfile(_Closed):
    """A contact as the team knows them."""

    id: int
    wa_id: Annotated[str | None, Field(description="The WhatsApp id (the number without `+`), when known.")]
    user_id: Annotated[str | None, Field(description="Meta's business-scoped user id (BSUID), when sent.")]
    phone: Annotated[str | None, Field(description="`+<wa_id>`, when the contact has one.")]
    profile_name: Annotated[
        str | None, Field(description="The name the person set on WhatsApp; kept apart from `display_name`.")
    ]
    display_name: Annotated[str | None, Field(description="The team's name for the contact; null when none.")]
    name: Annotated[
        str, Field(description="How the inbox shows the contact: `display_name`, else `profile_name`, else `phone`.")
    ]
    notes: Annotated[str, Field(description="The team's notes (empty when none).")]
    attributes: Annotated[dict[str, str], Field(description="The team's custom attributes, key → value.")]
    conversations: Annotated[
        list[ContactConversation], Field(description="Every conversation with the contact, newest activity first.")
    ]
    created_at: datetime
    updated_at: datetime


class Liveness(_Closed):
    status: Literal["ok"]


class Readiness(_Closed):
    status: Literal["ready"]


class AgentProfile(_Closed):
    """The caller (`GET|PATCH /yo`): who they are and their own preferences."""

    id: int
    name: str
    email: str
    role: Literal["admin", "agent"]
    language: Annotated[
        Literal["es", "en"] | None,
        WithJsonSchema({"type": ["string", "null"], "enum": ["es", "en", None]}),
        Field(description="The pages' language; null follows the browser."),
    ]
    time_zone: Annotated[str | None, Field(description="An IANA time zone; null follows the browser.")]
    notify_desktop: Annotated[bool, Field(description="Browser notifications of new messages and mentions.")]
    notify_sound: Annotated[bool, Field(description="A short sound with each notification.")]
    notify_scope: Annotated[
        Literal["mine_and_unassigned", "all"],
        Field(description="Whose new customer messages notify: the caller's and unassigned conversations, or all."),
    ]


class MentionConversation(_Closed):
    id: int
    display_name: str


class MentionNote(_Closed):
    id: Annotated[int, Field(description="The note's message id (open the thread at it with `/?c=…&m=…`).")]
    text: Annotated[str | None, Field(description="The first 160 characters of the note.")]
    sent_at: datetime


class MentionItem(_Closed):
    """The caller named with `@` in a private note."""

    id: int
    conversation: MentionConversation
    note: MentionNote
    author: Annotated[AgentRef | None, Field(description="Who wrote the note; null once that agent is deleted.")]
    created_at: datetime
    read_at: Annotated[datetime | None, Field(description="When the caller marked it read; null while unread.")]


class MentionPagination(_Closed):
    page: Annotated[int, Field(ge=1)]
    per_page: Annotated[int, Field(ge=1, le=100)]
    total: Annotated[int, Field(ge=0, description="The caller's mentions (with `unread=true`, the unread ones).")]
    pages: Annotated[int, Field(ge=0, description="ceil(total / per_page); 0 when there is nothing.")]


class MentionList(_Closed):
    mentions: Annotated[list[MentionItem], Field(description="Unread first, then newest first.")]
    pagination: MentionPagination
    unread: Annotated[int, Field(ge=0, description="The caller's unread mentions, in all.")]


class MentionsMarked(_Closed):
    marked: Annotated[int, Field(ge=0, description="The mentions that were unread and are read now.")]


# Schemas written as JSON Schema: pydantic would spell the nullable enum as `anyOf`, and the
# media download is bytes, not JSON.
class BusinessHoursSettings(_Closed):
    """The business hours, the away message and the greeting (`GET|PUT /horario`)."""

    time_zone: Annotated[str, Field(examples=["Europe/Madrid"])]
    week: Annotated[
        dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[list[str]]],
        Field(description='Each weekday\'s ["HH:MM", "HH:MM"] opening intervals; "24:00" ends the day.'),
    ]
    holidays: Annotated[list[str], Field(description="Local dates closed all day, sorted.")]
    enabled: bool
    away_message: str
    greeting_enabled: bool
    greeting_message: str
    updated_at: Annotated[datetime | None, Field(description="Null until an admin first saves them.")]
    open_now: Annotated[bool, Field(description="Whether the business is open at the time of the answer.")]
    next_opening: Annotated[
        datetime | None, Field(description="When it opens next (now while open); null if it never opens.")
    ]


class ReportRange(_Closed):
    desde: date
    hasta: date
    days: int
    time_zone: Annotated[str, Field(description="The business time zone the dates and hours are read in.")]
    start: Annotated[datetime, Field(description="Local midnight of `desde`, in UTC.")]
    end: Annotated[datetime, Field(description="Local midnight after `hasta`, in UTC (excluded).")]


class ReportStats(_Closed):
    count: int
    median_seconds: Annotated[float | None, Field(description="Null when `count` is 0.")]
    p90_seconds: Annotated[float | None, Field(description="The 90th percentile; null when `count` is 0.")]


class ReportFirstResponse(_Closed):
    wall: Annotated[ReportStats, Field(description="Wall-clock seconds.")]
    business: Annotated[ReportStats, Field(description="Seconds within business hours (all, while they are off).")]


class ReportDay(_Closed):
    date: date
    opened: Annotated[int, Field(description="Conversations whose first message came that day.")]
    reopened: int
    resolved: int
    first_responses: int
    first_response_median_seconds: float | None
    first_response_business_median_seconds: float | None
    messages_in: int
    messages_out: int


class ReportHour(_Closed):
    hour: Annotated[int, Field(ge=0, le=23, description="Local hour of the day (9 is 09:00–09:59).")]
    messages_in: int
    messages_out: int


class ReportBacklogBucket(_Closed):
    key: Literal["under_1h", "1h_to_4h", "4h_to_24h", "over_24h"]
    count: int


class ReportWaiting(_Closed):
    count: int
    oldest_since: Annotated[
        datetime | None, Field(description="The longest waiting customer's first unanswered message.")
    ]
    oldest_wait_seconds: float | None
    oldest_business_wait_seconds: float | None


class ReportBacklog(ReportWaiting):
    buckets: list[ReportBacklogBucket]


class ReportAgentRef(_Closed):
    id: int
    name: str


class ReportAgent(_Closed):
    agent: Annotated[
        ReportAgentRef | None,
        Field(description="Null: replies sent from the phone (echoes), resolutions and waits of unassigned ones."),
    ]
    first_response: Annotated[ReportFirstResponse, Field(description="As the replying agent.")]
    resolution: Annotated[ReportStats, Field(description="As the assignee.")]
    backlog: Annotated[ReportWaiting, Field(description="Waiting now, assigned to this agent.")]


class ReportSampling(_Closed):
    first_response: int
    resolution: int


class Report(_Closed):
    """`GET /informes`: first response and resolution times, volumes by day and hour, the backlog."""

    range: ReportRange
    generated_at: datetime
    business_hours_enabled: bool
    percentile_sample_every: Annotated[
        ReportSampling,
        Field(
            description="1: medians and percentiles are exact (up to 50,000 events in the range); k: read from a "
            "repeatable sample of about one event in k."
        ),
    ]
    first_response: ReportFirstResponse
    resolution: Annotated[ReportStats, Field(description="From opening or reopening to resolution, wall-clock.")]
    days: Annotated[list[ReportDay], Field(description="Every date of the range, in order.")]
    hours: Annotated[list[ReportHour], Field(description="24 entries, hour 0 to 23.")]
    backlog: Annotated[
        ReportBacklog, Field(description="Now (not the range): open conversations waiting for an answer.")
    ]
    agents: Annotated[list[ReportAgent], Field(description="By name; the row without an agent last.")]


JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "MediaBytes": {"type": "string", "description": "The file's bytes, as WhatsApp stores them."},
    "DeliveryStatus": {
        "type": ["string", "null"],
        "enum": [*DELIVERY_STATUSES, None],
        "description": "The delivery status of an outbound message; null for inbound ones. `pending`: stored, "
        "the Graph API has not answered yet; `accepted`: the Graph API gave it a `wamid`; then Meta's ticks. It "
        "only moves forward: `pending` → `accepted` → `sent` → `delivered` → `read` → `played`; `failed` "
        "outranks `sent` but never replaces `delivered` or `read`.",
    },
}

# Documented under `components/schemas` by their class names (with the models they use), also
# when no operation names them directly.
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    AgentProfile,
    MentionList,
    MentionsMarked,
    MentionItem,
    BusinessHoursSettings,
    Report,
    Error,
    MissingParametersError,
    FileTooLargeError,
    UnknownIdsError,
    UnsupportedMediaError,
    StickerDimensionsError,
    WindowClosedError,
    SendFailure,
    ReactionResult,
    ReactionFailure,
    MediaFailure,
    WebhookReceipt,
    ConversationList,
    MessageSearchResults,
    ReadResult,
    CannedResponseList,
    LabelList,
    BulkResult,
    Template,
    ConversationSummary,
    MessagePage,
    Message,
    SentTemplate,
    Media,
    Location,
    ThreadEvent,
)
