"""What the API answers when it refuses or fails, declared as pydantic models.

`app/api/errors.py` builds these bodies (the one `error_response()`), `app/api/sending.py`
builds the send failure; the models describe them exactly and are the OpenAPI schemas of the
same names (`app/api/docs.py`). They are documentation and type, not a second serialiser.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


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
    # A schema still written in openapi.yaml; app/api/docs.py turns the marker into its $ref.
    stored_message: Annotated[dict[str, Any], WithJsonSchema({"x-component": "Message"})]


class MediaFailure(_Closed):
    """Graph did not hand over the file."""

    error: Literal["graph_error"]
    message: str
    graph_error: GraphErrorDetail


# Documented under `components/schemas` by their class names.
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    MissingParametersError,
    WindowClosedError,
    SendFailure,
    MediaFailure,
)
