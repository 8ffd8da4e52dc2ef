"""A workflow step issues a promo code to the contact; the next send step's message shows it."""

import pytest
from django.urls import reverse

from campaigns.delivery.engine import send_request_process
from campaigns.promo.models import PromoCode
from campaigns.promo.services import promo_codes_add, promo_pool_create
from marketing.workflows.models import Workflow, WorkflowMessage, WorkflowRun
from marketing.workflows.simulator import simulate
from tests.workflows.conftest import chain, make_workflow, published
from tests.workflows.test_engine import emit, start

pytestmark = pytest.mark.django_db


def test_issue_step_gives_a_code_and_the_next_message_shows_it(
    ann, mail_to_sink, django_capture_on_commit_callbacks
):
    pool = promo_pool_create(name="Welcome", key="WELCOME")
    promo_codes_add(pool=pool, lines=[(1, "WEL-1"), (2, "WEL-2")])
    template = published("Your code", "<p>Your code: $!promo.WELCOME</p>")
    make_workflow(
        chain(
            {"kind": "promo_issue", "pool_id": pool.pk},
            {"kind": "send", "template_id": template.pk, "channel": "email"},
        )
    )

    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)

    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "completed"
    code = PromoCode.objects.get(assigned_at__isnull=False)
    assert (code.code, code.contact_id, code.workflow_run_id) == ("WEL-1", ann.pk, run.pk)
    delivery = WorkflowMessage.objects.get(run=run).delivery
    send_request_process(send_request_id=delivery.send_request_id)
    [mail] = mail_to_sink.messages
    assert "Your code: WEL-1" in mail.get_body(("html",)).get_content()
    # The message showed the contact's code; it did not take a second one.
    assert PromoCode.objects.filter(assigned_at__isnull=True).count() == 1


def test_issue_step_with_an_empty_pool_stops_the_run_with_the_reason(
    ann, django_capture_on_commit_callbacks
):
    pool = promo_pool_create(name="Welcome", key="WELCOME")
    make_workflow(chain({"kind": "promo_issue", "pool_id": pool.pk}))

    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)

    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "failed"
    assert "promo pool WELCOME has no free codes left (0 sent)" in run.error


def test_single_message_without_a_code_fails_with_the_reason(
    ann, mail_to_sink, django_capture_on_commit_callbacks
):
    promo_pool_create(name="Welcome", key="WELCOME")
    template = published("Your code", "<p>Your code: $!promo.WELCOME</p>")
    make_workflow(chain({"kind": "send", "template_id": template.pk, "channel": "email"}))

    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    delivery = WorkflowMessage.objects.get(run_id=run_id).delivery
    send_request_process(send_request_id=delivery.send_request_id)

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.error == "promo pool WELCOME has no free codes left (0 sent)"
    assert mail_to_sink.messages == []


def test_simulator_describes_the_issue_step(ann):
    pool = promo_pool_create(name="Welcome", key="WELCOME")
    result = simulate(graph=chain({"kind": "promo_issue", "pool_id": pool.pk}), contact=ann)
    assert result.path[0].description == "would issue a code of promo pool WELCOME"


def test_marketer_adds_an_issue_step_on_the_workflow_page(client, marketer):
    pool = promo_pool_create(name="Welcome", key="WELCOME")
    client.force_login(marketer)
    client.post("/automation/", {"name": "Codes", "scenario": ""})
    workflow = Workflow.objects.get()
    client.post(reverse("workflow_step_add", args=[workflow.pk]), {"kind": "promo_issue"})
    page = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert "Issue a promo code" in page and "Welcome (WELCOME)" in page

    response = client.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {"s1-label": "", "s1-pool": pool.pk, "s1-next": ""},
    )

    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.draft_graph["steps"][0] == {
        "id": "s1",
        "kind": "promo_issue",
        "label": "",
        "next": "",
        "pool_id": pool.pk,
    }
