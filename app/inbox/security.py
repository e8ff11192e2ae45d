"""Security headers for every answer, and a strict Content-Security-Policy for the pages.

No inline script, no inline style, no `style=` attribute: scripts and styles come only from
this origin (the hashed files under /assets). Images and media come from this origin too (the
media endpoint relays WhatsApp's bytes), or from `blob:` object URLs: the composer's preview of
a file the agent is about to send, which never leaves the browser until it is sent.

HTML answers that set no caching of their own are `no-store` (a page may show a customer's
messages or, on the admin page, a new password): the live fragments keep their own
`private, no-cache` + ETag (304 while nothing changed), the hashed /assets their year. HSTS is
sent when the configuration asks for it (`STRICT_TRANSPORT_SECURITY`: production only, since
it would lock a browser out of http://127.0.0.1 in development).
"""

from __future__ import annotations

from flask import Flask, Response, current_app

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    hsts = current_app.config.get("STRICT_TRANSPORT_SECURITY")
    if hsts:
        headers.setdefault("Strict-Transport-Security", hsts)
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
