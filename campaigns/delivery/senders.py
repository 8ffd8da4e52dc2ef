"""The sender interface below the engine, and the registry keyed by channel.

A sender hands rendered messages to one provider: `send(batch)` answers one `Outcome` per
row (accepted with the provider's id, transient or permanent with the reason) and keeps
whatever it can between batches of one task (an open SMTP connection). Raising is for bugs;
refusals are outcomes. The engine asks `sender_for(channel)` for a fresh sender per task and
closes it after; built-in senders are registered by campaigns.delivery.builtin, a provider
package registers its own from its app's `ready()` (a later registration for a channel
replaces the earlier one).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from campaigns.delivery.content import SendContent
from campaigns.models import Delivery
from contacts.models import CustomField
from templates.services import RenderedMessage


class Outcome(NamedTuple):
    """What became of one message: `status` is "accepted", "transient" or "permanent";
    `detail` is the provider's message id when accepted (may be empty), else the reason;
    `throttled`: the provider asked us to slow down (SMTP 421/454, HTTP 429): the engine
    cuts its rate (campaigns.delivery.rate)."""

    status: str
    detail: str = ""
    throttled: bool = False


ACCEPTED = "accepted"
TRANSIENT = "transient"
PERMANENT = "permanent"


def accepted(provider_id: str = "") -> Outcome:
    return Outcome(ACCEPTED, provider_id)


def transient(reason: str, *, throttled: bool = False) -> Outcome:
    return Outcome(TRANSIENT, reason, throttled)


def permanent(reason: str) -> Outcome:
    return Outcome(PERMANENT, reason)


@dataclass
class Message:
    """One row of a batch: the delivery (its locator, Message-ID, request id) and what it
    says, already rendered by the engine."""

    delivery: Delivery
    rendered: RenderedMessage


class Sender(ABC):
    """One provider for some channels, for the length of one task."""

    #: The channels this sender serves.
    channels: frozenset[str] = frozenset()
    #: The provider's name, written on deliveries it sent ("accepted by smtp").
    name: str = ""

    def __init__(self, content: SendContent, custom_fields: list[CustomField]) -> None:
        self.content = content
        self.custom_fields = custom_fields

    @abstractmethod
    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        """Send the batch; return an outcome per delivery id."""

    def close(self) -> None:  # noqa: B027 (most senders hold nothing)
        """Release what the sender kept between batches."""


SenderFactory = Callable[[SendContent, list[CustomField]], Sender]
_SENDERS: dict[str, SenderFactory] = {}


def sender_register(channels: frozenset[str] | set[str], factory: SenderFactory) -> None:
    for channel in channels:
        _SENDERS[channel] = factory


def sender_for(
    channel: str, content: SendContent, custom_fields: list[CustomField]
) -> Sender | None:
    """A fresh sender for the channel, or None when no provider serves it."""
    factory = _SENDERS.get(channel)
    return factory(content, custom_fields) if factory else None
