"""Template writes beyond editing: duplicating and deleting (pages and API share them)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError

from templates.models import MessageTemplate
from templates.services import template_create

COPY_SUFFIX = " (copy)"


class TemplateInUseError(Exception):
    """The template cannot be deleted: messages were sent with one of its versions."""

    def __init__(self, template: MessageTemplate) -> None:
        self.template = template
        super().__init__(
            f"“{template}” cannot be deleted: messages were sent with its published versions, "
            "and the message log keeps what was sent. Rename it instead."
        )


@transaction.atomic
def template_duplicate(*, template: MessageTemplate) -> MessageTemplate:
    """A new draft with the same content; versions are not copied (the copy starts at 0)."""
    name = template.name[: 200 - len(COPY_SUFFIX)] + COPY_SUFFIX
    return template_create(
        name=name,
        channel=template.channel,
        subject=template.subject,
        preheader=template.preheader,
        from_name=template.from_name,
        from_email=template.from_email,
        html=template.html,
        # A derived text follows the HTML in the copy too.
        text="" if template.text_generated else template.text,
        sms_text=template.sms_text,
    )


@transaction.atomic
def template_delete(*, template: MessageTemplate) -> None:
    """Delete a template and its versions, unless a delivery or send request points at one
    of them (the ledger protects them: what was sent must stay explainable)."""
    try:
        # A savepoint, so the refused delete leaves the surrounding transaction usable.
        with transaction.atomic():
            template.delete()
    except ProtectedError:
        raise TemplateInUseError(template) from None
