"""A workflow's own link: `/w/<button_key>/?c=<token>` starts a "button" workflow for the
contact the token was signed for, so the link can sit behind a button in a message: a
template writes `<a href="%WORKFLOW_URL:<button key>%">…</a>` and each recipient gets a link
of their own. The token is the tracking links' HMAC (campaigns.tracking) over the contact id
and the workflow's key: a forged or garbled token, or one made for another workflow, names
nobody."""

from campaigns.tracking import (
    PURPOSE_WORKFLOW_BUTTON,
    token_check,
    token_make,
    workflow_button_url,
)
from marketing.workflows.models import Workflow

PURPOSE = PURPOSE_WORKFLOW_BUTTON


def button_token(*, workflow: Workflow, contact_id: int) -> str:
    return token_make(purpose=PURPOSE, delivery_id=contact_id, extra=workflow.button_key)


def button_url(*, workflow: Workflow, contact_id: int) -> str:
    """What `%WORKFLOW_URL:<button key>%` becomes in this contact's messages."""
    return workflow_button_url(button_key=workflow.button_key, contact_id=contact_id)


def button_contact(*, workflow: Workflow, token: str) -> int | None:
    """The contact id the token was signed for with this workflow's key, else None."""
    if not workflow.button_key:
        return None
    return token_check(purpose=PURPOSE, token=token, extra=workflow.button_key)
