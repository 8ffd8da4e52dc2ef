"""A workflow's own link: `/w/<button_key>/?c=<token>` starts a "button" workflow for the
contact the token was signed for, so the link can sit behind a button in a message. The token
is the tracking links' HMAC (campaigns.tracking) over the contact id and the workflow's key:
a forged or garbled token, or one made for another workflow, names nobody."""

from django.conf import settings

from campaigns.tracking import token_check, token_make
from marketing.workflows.models import Workflow

PURPOSE = "workflow-button"


def button_token(*, workflow: Workflow, contact_id: int) -> str:
    return token_make(purpose=PURPOSE, delivery_id=contact_id, extra=workflow.button_key)


def button_url(*, workflow: Workflow, contact_id: int) -> str:
    base = settings.HERALD_BASE_URL.rstrip("/")
    token = button_token(workflow=workflow, contact_id=contact_id)
    return f"{base}/w/{workflow.button_key}/?c={token}"


def button_contact(*, workflow: Workflow, token: str) -> int | None:
    """The contact id the token was signed for with this workflow's key, else None."""
    if not workflow.button_key:
        return None
    return token_check(purpose=PURPOSE, token=token, extra=workflow.button_key)
