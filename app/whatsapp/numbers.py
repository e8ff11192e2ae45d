"""Phone numbers as people type them, made into WhatsApp's digits (pure: no Flask, no database).

Parsing and validation are Google's libphonenumber rules (the `phonenumbers` package), so
`+34 612 34 56 78`, `0034 612 34 56 78` and, in the default region `ES`, `612 345 678` are all
`34612345678` — E.164 without the `+`, the shape of a `wa_id`. The digits are only what was
typed: Meta's answer to the first send names the `wa_id` its webhooks will use for that person
(`contacts[0].wa_id`), which can differ (Mexico's `52 1 …`, Argentina's `54 9 …`, Brazil's
ninth digit); the caller re-keys the contact by it (app/services/starting.py).
"""

from __future__ import annotations

import phonenumbers

MAX_INPUT_CHARS = 64
# Mexico's mobile prefix "1" after the country code was retired from the numbering plan in
# 2019 and libphonenumber no longer calls such numbers valid, but people still type them and
# WhatsApp knows them: accepted when the number without it is valid.
_LEGACY_MOBILE_PREFIX = {52: "1"}


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number that can be dialled; the message says why."""


def whatsapp_digits(text: str, region: str) -> str:
    """`text` as E.164 digits without the `+`, or InvalidPhoneNumber.

    A number without an international prefix (`+` or `00`) is read in `region` (ISO 3166
    alpha-2, e.g. `ES`).
    """
    cleaned = text.strip()
    if not cleaned:
        raise InvalidPhoneNumber("Type a phone number.")
    if len(cleaned) > MAX_INPUT_CHARS:
        raise InvalidPhoneNumber(f"A phone number has at most {MAX_INPUT_CHARS} characters.")
    try:
        number = phonenumbers.parse(cleaned, region.upper() or None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(
            f"'{cleaned}' is not a phone number. Type it with its country code (+34 612 34 56 78) or as a "
            f"national number of {region.upper()}."
        ) from None
    if not phonenumbers.is_valid_number(number) and not _legacy_mobile(number):
        raise InvalidPhoneNumber(
            f"'{cleaned}' is not a valid phone number"
            + (f" in {region.upper()}" if not cleaned.startswith(("+", "00")) else "")
            + ": check the digits and the country code."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")


def _legacy_mobile(number: phonenumbers.PhoneNumber) -> bool:
    prefix = _LEGACY_MOBILE_PREFIX.get(number.country_code or 0)
    national = str(number.national_number)
    if prefix is None or not national.startswith(prefix):
        return False
    shorter = phonenumbers.PhoneNumber(country_code=number.country_code, national_number=int(national[len(prefix) :]))
    return phonenumbers.is_valid_number(shorter)
