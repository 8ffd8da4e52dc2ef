import pytest

from marketing.workflows.services import workflow_activate, workflow_create
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def mail_to_sink(settings, smtp_sink):
    use_sink(settings, smtp_sink)
    return smtp_sink


def published(name: str, html: str = "<p>Hi $!contact.firstName</p>", channel: str = "email"):
    if channel == "sms":
        template = template_create(name=name, channel="sms", sms_text=html, from_name="Shop")
    else:
        template = template_create(
            name=name,
            subject=f"{name} $!data.get('orderId')",
            from_name="Shop",
            from_email="shop@shop.example",
            html=html,
        )
    template_publish(template=template)
    return template


@pytest.fixture
def welcome(db):
    return published("Welcome", "<p>Welcome $!contact.firstName, order $!data.get('orderId')</p>")


@pytest.fixture
def follow_up(db):
    return published("Follow-up")


@pytest.fixture
def ann(db):
    return ContactFactory(email="ann@example.com", first_name="Ann", time_zone="Europe/Berlin")


def make_workflow(graph: dict, *, event_key: str = "signup", activate: bool = True, **settings):
    from marketing.models import EventType

    if "trigger_kind" not in settings or settings["trigger_kind"] == "event":
        settings.setdefault("trigger_kind", "event")
        settings["event_type"], _ = EventType.objects.get_or_create(key=event_key)
    workflow = workflow_create(name="Test workflow", graph=graph, **settings)
    if activate:
        workflow = workflow_activate(workflow=workflow)
    return workflow


def chain(*steps: dict) -> dict:
    """A graph from steps in order (ids s1, s2, …; `next` to the following step)."""
    result = []
    for position, spec in enumerate(steps):
        step = {"id": f"s{position + 1}", "label": "", **spec}
        if step["kind"] not in ("condition", "exit") and "next" not in spec:
            step["next"] = f"s{position + 2}" if position + 1 < len(steps) else ""
        result.append(step)
    return {"start": "s1", "steps": result}
