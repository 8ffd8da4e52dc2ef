"""Public endpoints of the contacts app, reached without a login: the double opt-in
confirmation link."""

from django.shortcuts import render

from contacts.optin import ConfirmationError, contact_confirm_by_token


def contact_confirm(request, token):
    """Public: the link in the double opt-in email. No login; the signed token is the proof."""
    try:
        contact = contact_confirm_by_token(token=token)
    except ConfirmationError as exc:
        return render(request, "contacts/confirm_invalid.html", {"problem": str(exc)}, status=400)
    return render(request, "contacts/confirm_done.html", {"contact": contact})
