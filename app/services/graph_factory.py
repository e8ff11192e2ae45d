"""The app's Graph API client (`app/whatsapp/graph_client.py`), built once per app from its
configuration (`WHATSAPP_GRAPH_URL`, the access token, `WHATSAPP_MEDIA_HOSTS`, timeouts,
retries) and reporting every call to the metrics. Services that call Meta ask `graph_client()`
for it; it is built again when one of those settings changes (tests point it elsewhere)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.metrics import graph_observer
from app.whatsapp.graph_client import GraphClient

_SETTINGS = (
    "WHATSAPP_GRAPH_URL",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_MEDIA_HOSTS",
    "GRAPH_CONNECT_TIMEOUT",
    "GRAPH_READ_TIMEOUT",
    "GRAPH_MAX_RETRIES",
    "GRAPH_RETRY_BACKOFF",
)


def _settings_key(config: Any) -> tuple[Any, ...]:
    values = (config.get(name) for name in _SETTINGS)
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def graph_client() -> GraphClient:
    config = current_app.config
    key = _settings_key(config)
    cached = current_app.extensions.get("graph_client")
    if cached is not None and cached[0] == key:
        return cached[1]
    client = GraphClient(
        config["WHATSAPP_GRAPH_URL"],
        config["WHATSAPP_ACCESS_TOKEN"],
        connect_timeout=config["GRAPH_CONNECT_TIMEOUT"],
        read_timeout=config["GRAPH_READ_TIMEOUT"],
        max_retries=config["GRAPH_MAX_RETRIES"],
        backoff=config["GRAPH_RETRY_BACKOFF"],
        observer=graph_observer,
        media_hosts=config.get("WHATSAPP_MEDIA_HOSTS", ()),
    )
    current_app.extensions["graph_client"] = (key, client)
    return client
