"""Typed SQLAlchemy models, one module per aggregate. Models never commit."""

from app.models.agents import Agent, ApiToken
from app.models.conversations import BusinessNumber, Contact, Conversation
from app.models.events import StatusEvent, WebhookDelivery
from app.models.hours import AutoReply, BusinessHours
from app.models.labels import ConversationLabel, Label
from app.models.mentions import Mention
from app.models.messages import Message
from app.models.outbound import CannedResponse, IdempotencyKey, MessageTemplate, SendAttempt
from app.models.reports import ConversationEvent, ReportHour

__all__ = [
    "Agent",
    "ApiToken",
    "AutoReply",
    "BusinessHours",
    "BusinessNumber",
    "CannedResponse",
    "Contact",
    "Conversation",
    "ConversationEvent",
    "ConversationLabel",
    "IdempotencyKey",
    "Label",
    "Mention",
    "Message",
    "MessageTemplate",
    "ReportHour",
    "SendAttempt",
    "StatusEvent",
    "WebhookDelivery",
]
