"""Double opt-in: a contact who subscribed gets a signed link; following it confirms them.

The token is signed (django.core.signing, own salt) and carries the contact id and the email
it was sent to, so a link cannot confirm an address it was never sent to (the contact's
email may change between sending and clicking). No table stores tokens: expiry is the
signature's timestamp.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from config.core.errors import HeraldError
from config.core.i18n import organisation_language
from config.core.models import Organisation
from contacts.email_addresses import (
    SMTPUTF8_REFUSED,
    InternationalEmail,
    SMTPUTF8Unsupported,
    address_format,
    email_send,
    mailbox_ascii_domain,
)
from contacts.models import Contact
from contacts.segment_members import contacts_mark_changed

logger = logging.getLogger(__name__)

TOKEN_SALT = "herald.contacts.confirm"  # noqa: S105 (a signing namespace, not a secret)
TOKEN_MAX_AGE = timedelta(days=7)


class ConfirmationError(HeraldError):
    """The link cannot confirm anyone; the message is shown to the person who clicked."""


def confirmation_token_make(*, contact: Contact) -> str:
    return signing.dumps({"c": contact.pk, "e": contact.email}, salt=TOKEN_SALT, compress=True)


def confirmation_token_read(token: str) -> tuple[int, str]:
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise ConfirmationError(
            gettext("This confirmation link has expired. Subscribe again to get a new one.")
        ) from None
    except signing.BadSignature:
        raise ConfirmationError(
            gettext("This confirmation link is not valid. Check that it was copied completely.")
        ) from None
    return int(data["c"]), str(data["e"])


def confirmation_url(*, contact: Contact) -> str:
    path = reverse("contact_confirm", args=[confirmation_token_make(contact=contact)])
    return f"{settings.HERALD_BASE_URL}{path}"


def _sender() -> str:
    organisation = Organisation.load()
    if organisation.default_sender_email:
        return address_format(
            organisation.default_sender_name or organisation.name,
            organisation.default_sender_email,
        )
    return settings.DEFAULT_FROM_EMAIL


def confirmation_send(*, contact_id: int) -> None:
    """Email the confirmation link. Nothing to do (and nothing sent) if the contact is gone,
    already confirmed or has no email, so a retried task never mails twice after success."""
    contact = Contact.objects.alive().filter(pk=contact_id).first()
    if contact is None or contact.confirmed or not contact.email:
        logger.info("no confirmation mail for contact %s (gone, confirmed or no email)", contact_id)
        return
    context = {
        "contact": contact,
        "organisation": Organisation.load(),
        "confirm_url": confirmation_url(contact=contact),
        "valid_days": TOKEN_MAX_AGE.days,
    }
    with organisation_language():  # Herald's own mail speaks the organisation's language
        subject = render_to_string("contacts/emails/confirm_subject.txt", context).strip()
        message = InternationalEmail(
            subject=" ".join(subject.split()),
            body=render_to_string("contacts/emails/confirm_body.txt", context),
            from_email=_sender(),
            to=[mailbox_ascii_domain(contact.email)],
        )
        message.attach_alternative(
            render_to_string("contacts/emails/confirm_body.html", context), "text/html"
        )
    try:
        email_send(message)
    except SMTPUTF8Unsupported:
        # Not retried (the task retries OSErrors): the same server refuses it every time.
        logger.warning("no confirmation mail for contact %s: %s", contact_id, SMTPUTF8_REFUSED)


@transaction.atomic
def contact_confirm(*, contact_id: int, email: str | None = None) -> Contact:
    """Mark the contact confirmed (idempotent). With `email`, only if it still has that email."""
    contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
    if contact is None or contact.is_deleted:
        raise ConfirmationError(gettext("This subscription no longer exists."))
    if email is not None and contact.email != email:
        raise ConfirmationError(
            gettext("This link was sent to an address the subscription no longer uses.")
        )
    if not contact.confirmed or contact.confirmed_at is None:
        contact.confirmed = True
        contact.confirmed_at = timezone.now()
        # save(), not update(): the audit log records who confirmed and when.
        contact.save(update_fields=["confirmed", "confirmed_at", "updated_at"])
        contacts_mark_changed(contact_ids=[contact.pk])
    return contact


def contact_confirm_by_token(*, token: str) -> Contact:
    contact_id, email = confirmation_token_read(token)
    return contact_confirm(contact_id=contact_id, email=email)
