"""What the domain refuses, in its own words: the one hierarchy of errors the services raise.

Each error has a stable `code` (what clients and pages branch on, never the message text), a
human-readable English `message`, and optional `extra` facts (the field at fault, the missing
placeholders, Meta's error…). The services know nothing of HTTP: the API maps these classes to
status codes and one error body in `app/api/errors.py`; the pages turn the same codes into
translated flashes.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Something the domain refuses or cannot do. Nothing was stored unless the subclass says so."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    code = "not_found"


class Forbidden(DomainError):
    """The caller's role does not allow it (see the role matrix in the README's Security
    section): an agent removing a canned response someone else wrote."""

    code = "forbidden"


class Invalid(DomainError):
    """The input is wrong; `field` names what is wrong when one field is to blame."""

    code = "invalid_body"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, **extra: Any) -> None:
        super().__init__(message, code=code, **extra)
        self.field = field


class InvalidParameter(Invalid):
    """A query parameter is wrong: the answer names it (`parameter`)."""

    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message, field=parameter, parameter=parameter)


class Conflict(DomainError):
    """The request is well-formed but the current state does not allow it (a duplicate, a
    message that is not failed, a key still in use…)."""

    code = "conflict"


class WindowClosed(Conflict):
    """Free text outside the customer's 24-hour window: WhatsApp only accepts a template."""

    code = "window_closed"


class KeyReused(DomainError):
    """An idempotency key already stands for a different request."""

    code = "idempotency_key_reused"


class Gone(DomainError):
    """It existed but is no longer available (WhatsApp keeps media for 7 days)."""

    code = "gone"


class NotConfigured(DomainError):
    """A setting the operation needs is missing; `setting` names it."""

    code = "not_configured"


class TooLarge(DomainError):
    """A file over WhatsApp's limit for its type (or over the largest upload at all)."""

    code = "file_too_large"


class UnsupportedMedia(DomainError):
    """A file WhatsApp does not take: an unknown or refused type, or a name that says another type
    than the content (`media_type_mismatch`)."""

    code = "unsupported_media_type"


class StorageUnavailable(DomainError):
    """The media storage could not keep the file; nothing was sent. Try again."""

    code = "storage_unavailable"


class UpstreamFailed(DomainError):
    """WhatsApp (Graph) refused or could not be reached."""

    code = "graph_error"
