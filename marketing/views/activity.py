"""The contact activity timeline page (/contacts/<id>/activity/), linked from the contact's
page. It lives here, above contacts, because it reads campaigns, orders, events and
workflows (marketing.activity)."""

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from config.core.roles import Role, role_required
from contacts.models import Contact
from marketing.activity import KINDS, Cursor, CursorError, contact_activity

KIND_LABELS = {
    "message": _("Messages"),
    "open": _("Opens"),
    "click": _("Clicks"),
    "unsubscribe": _("Unsubscribes"),
    "bounce": _("Bounces and complaints"),
    "order": _("Orders"),
    "event": _("Events"),
    "workflow": _("Workflow runs"),
}


def _link(item: dict) -> str:
    kind, detail = item["kind"], item["detail"]
    if kind == "order":
        return reverse("order_detail", args=[item["id"]])
    if kind == "workflow":
        return reverse("workflow_run_detail", args=[item["id"]])
    if kind in ("message", "open", "click", "unsubscribe", "bounce"):
        if detail.get("campaignId"):
            return reverse("campaign_detail", args=[detail["campaignId"]])
        if detail.get("requestId"):
            return reverse("message_detail", args=[detail["requestId"]])
    return ""


@role_required(Role.VIEWER)
def contact_activity_page(request, pk: int):
    contact = get_object_or_404(Contact, pk=pk)
    kinds = {kind for kind in request.GET.getlist("kind") if kind in KINDS}
    error = ""
    before = None
    if request.GET.get("before"):
        try:
            before = Cursor.decode(request.GET["before"])
        except CursorError as exc:
            error = f"before: {exc}"
    page = contact_activity(contact_id=contact.pk, before=before, kinds=kinds or None)
    for item in page.items:
        item["link"] = _link(item)
        item["label"] = KIND_LABELS[item["kind"]]
        # Pairs made here: in a template, `detail.items` finds a key named "items" first.
        item["pairs"] = list(item["detail"].items()) if item["kind"] == "event" else []
    older = request.GET.copy()
    older["before"] = page.next or ""
    return render(
        request,
        "marketing/contact_activity.html",
        {
            "contact": contact,
            "page": page,
            "kinds": [(kind, KIND_LABELS[kind], kind in kinds) for kind in KINDS],
            "older_query": older.urlencode(),
            "filter_error": error,
            "filtered": bool(kinds),
        },
    )
