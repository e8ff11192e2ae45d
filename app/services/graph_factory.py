"""The app's Graph API client (`app/whatsapp/graph_client.py`), built once per app from its
configuration (`WHATSAPP_GRAPH_URL`, the access token, timeouts, retries) and reporting every
call to the metrics. Services that call Meta ask `graph_client()` for it."""

from __future__ import annotations

from flask import current_app

from app.metrics import graph_observer
from app.whatsapp.graph_client import GraphClient


def graph_client() -> GraphClient:
    client = current_app.extensions.get("graph_client")
    config = current_app.config
    if client is None or client.base_url != config["WHATSAPP_GRAPH_URL"]:
        client = GraphClient(
            config["WHATSAPP_GRAPH_URL"],
            config["WHATSAPP_ACCESS_TOKEN"],
            connect_timeout=config["GRAPH_CONNECT_TIMEOUT"],
            read_timeout=config["GRAPH_READ_TIMEOUT"],
            max_retries=config["GRAPH_MAX_RETRIES"],
            backoff=config["GRAPH_RETRY_BACKOFF"],
            observer=graph_observer,
        )
        current_app.extensions["graph_client"] = client
    return client
