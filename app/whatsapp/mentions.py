"""Who a private note mentions: the one rule for `@name` (pure: no Flask, no database).

A mention is `@` at the start of the text or after a character that is not a letter or digit
(so `ana@example.com` mentions nobody), followed by one of an agent's handles, compared without
case and accents (`@lucia` is Lucía) and with any run of spaces as one:

* the agent's full name (`@Ana Agente`),
* the local part of their e-mail (`@ana.garcia` for ana.garcia@example.com),
* the first word of their name (`@Ana`), unless two agents share it.

The handle must end the word: the next character is not a letter, digit or `_`, nor a `.` or
`-` joined to more of the word (`@ana.` at the end of a sentence is Ana; `@anabel` is not).
The longest handle wins (`@Ana Agente` is Ana Agente, not another Ana); a handle two agents
share mentions nobody (write the full name or the e-mail). Unknown names mention nobody.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mentionable:
    """An agent as the rule sees them."""

    id: int
    name: str
    email: str


@dataclass(frozen=True)
class Found:
    """A mention: `text[start:end]` is the `@handle` as written; `agent_id` is who it names."""

    start: int
    end: int
    agent_id: int


def _fold(char: str) -> str:
    """One character without case or accents (may be empty, or longer: "ß" is "ss")."""
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def normalise(text: str) -> str:
    """A handle or name as compared: folded, whitespace runs as one space, trimmed."""
    folded, _ = _folded_with_positions(text)
    return folded.strip()


def _folded_with_positions(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each of its characters, the index in `text` it came from."""
    out: list[str] = []
    positions: list[int] = []
    previous_space = False
    for index, char in enumerate(text):
        if char.isspace():
            if not previous_space:
                out.append(" ")
                positions.append(index)
            previous_space = True
            continue
        previous_space = False
        for folded in _fold(char):
            out.append(folded)
            positions.append(index)
    return "".join(out), positions


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def handles(agents: Iterable[Mentionable]) -> dict[str, int | None]:
    """Every handle → the agent it names, or None when several agents share it."""
    owners: dict[str, set[int]] = {}
    for agent in agents:
        name = normalise(agent.name)
        local = normalise(agent.email.partition("@")[0])
        first = name.split(" ")[0] if name else ""
        for handle in {name, local, first}:
            if handle:
                owners.setdefault(handle, set()).add(agent.id)
    return {handle: next(iter(ids)) if len(ids) == 1 else None for handle, ids in owners.items()}


def _ends_word(folded: str, at: int) -> bool:
    if at >= len(folded):
        return True
    char = folded[at]
    if _is_word(char):
        return False
    # A dot or hyphen that goes on into more of the word ("@ana.garcia") does not end it.
    return not (char in ".-" and at + 1 < len(folded) and _is_word(folded[at + 1]))


def find_mentions(text: str, agents: Iterable[Mentionable]) -> list[Found]:
    """The mentions in `text`, in order (an agent may be mentioned more than once)."""
    known = handles(agents)
    if not known or "@" not in text:
        return []
    by_length = sorted(known, key=len, reverse=True)
    folded, positions = _folded_with_positions(text)
    found: list[Found] = []
    index = 0
    while (at := folded.find("@", index)) != -1:
        index = at + 1
        if at > 0 and folded[at - 1].isalnum():
            continue  # an e-mail address, not a mention
        rest = folded[at + 1 :]
        for handle in by_length:
            if rest.startswith(handle) and _ends_word(folded, at + 1 + len(handle)):
                agent_id = known[handle]
                if agent_id is not None:
                    last = positions[at + len(handle)]
                    found.append(Found(start=positions[at], end=last + 1, agent_id=agent_id))
                    index = at + 1 + len(handle)
                break
    return found


def mentioned_agents(text: str, agents: Iterable[Mentionable]) -> list[int]:
    """The ids of the agents `text` mentions, each once, in order of first mention."""
    return list(dict.fromkeys(found.agent_id for found in find_mentions(text, agents)))
