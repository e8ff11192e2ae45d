"""Typed SQLAlchemy models, one module per aggregate. Models never commit."""

from app.models.agents import Agent, ApiToken
from app.models.conversations import BusinessNumber, Contact, Conversation
from app.models.events import StatusEvent, WebhookDelivery
from app.models.messages import Message

__all__ = [
    "Agent",
    "ApiToken",
    "BusinessNumber",
    "Contact",
    "Conversation",
    "Message",
    "StatusEvent",
    "WebhookDelivery",
]
