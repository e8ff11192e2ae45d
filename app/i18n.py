"""Language and time zone of the pages: Spanish by default, English available."""

from __future__ import annotations

from flask import current_app, request, session

LANGUAGES = ("es", "en")


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["BABEL_DEFAULT_LOCALE"]
