"""A workflow send step's allowed sending window: set in the step editor (refused when it
never opens), checked on activation, and carried by the step's message, a marketing send that
waits for the window in the contact's zone."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery, DeliveryStatus, SendKind
from marketing.workflows import graph as wf_graph
from marketing.workflows.models import Workflow, WorkflowRun
from tests.workflows.conftest import chain, make_workflow
from tests.workflows.test_engine import emit, start

pytestmark = pytest.mark.django_db


def test_step_editor_saves_the_window_and_refuses_one_that_never_opens(client, marketer, welcome):
    client.force_login(marketer)
    workflow = make_workflow(
        chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}), activate=False
    )
    url = reverse("workflow_step_save", args=[workflow.pk, "s1"])
    step = {"s1-template": welcome.pk, "s1-channel": "email", "s1-next": ""}

    response = client.post(url, {**step, "s1-window_from": "09:00", "s1-window_to": "09:00"})
    assert response.status_code == 400
    assert "never opens" in response.content.decode()

    response = client.post(
        url,
        {
            **step,
            "s1-window_from": "09:00",
            "s1-window_to": "20:00",
            "s1-window_days": ["1", "2", "3", "4", "5"],
        },
    )
    assert response.status_code == 302
    saved = Workflow.objects.get().draft_graph["steps"][0]
    assert saved["window"] == {"from": "09:00", "to": "20:00", "days": [1, 2, 3, 4, 5]}
    page = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert 'value="20:00"' in page


def test_activation_refuses_a_send_step_whose_window_never_opens(welcome):
    graph = chain(
        {
            "kind": "send",
            "template_id": welcome.pk,
            "channel": "email",
            "window": {"from": "09:00", "to": "20:00", "days": []},
        }
    )
    problems = wf_graph.structure_problems(graph)
    assert any("window.days" in problem for problem in problems), problems


def test_workflow_message_waits_for_the_steps_window(
    ann, welcome, mail_to_sink, django_capture_on_commit_callbacks
):
    now = timezone.now()
    closed = {
        "from": (now + dt.timedelta(hours=2)).strftime("%H:%M"),
        "to": (now + dt.timedelta(hours=3)).strftime("%H:%M"),
    }
    ann.time_zone = "UTC"
    ann.save()
    make_workflow(
        chain({"kind": "send", "template_id": welcome.pk, "channel": "email", "window": closed})
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)

    delivery = Delivery.objects.get(pk=WorkflowRun.objects.get(pk=run_id).path[0]["delivery"])
    assert delivery.send_request.kind == SendKind.WORKFLOW
    assert delivery.send_request.send_window == closed
    send_request_process(send_request_id=delivery.send_request_id)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    assert delivery.next_attempt_at > now + dt.timedelta(minutes=100)
    assert mail_to_sink.messages == []
