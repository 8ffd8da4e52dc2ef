"""Language versions of templates: the draft's rules, the snapshot on publish, the choice of a
version per recipient language in the delivery engine (with fallback), single messages with
languageCode, and Herald's own API for them."""

import pytest

from campaigns import messages, pipeline
from campaigns.delivery import engine
from campaigns.models import CampaignRun, Delivery
from templates.errors import TemplateValidationError
from templates.languages import language_pick, template_language_create, template_language_update
from templates.models import TemplateVersionLanguage
from templates.services import template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


def multilingual(publish: bool = True):
    template = template_create(
        name="Spring",
        subject="Spring sale, $!contact.firstName",
        from_email="news@shop.example",
        html="<p>Hello $!contact.firstName</p>",
    )
    template_language_create(
        template=template,
        language_code="uk",
        subject="Весняний розпродаж, $!contact.firstName",
        html="<p>Привіт $!contact.firstName</p>",
    )
    template_language_create(
        template=template, language_code="EN", subject="Spring sale (English)", html="<p>Hi</p>"
    )
    if publish:
        template_publish(template=template)
    return template


def drain(send) -> None:
    for _ in range(10):
        if send() is None:
            return


def test_language_pick_is_case_insensitive_and_falls_back_to_the_primary_language():
    available = {"en", "uk", "pt-br"}
    assert language_pick(available, "UK") == "uk"
    assert language_pick(available, "en-GB") == "en"
    assert language_pick(available, "en_GB") == "en"
    assert language_pick(available, "pt-BR") == "pt-br"
    assert language_pick(available, "pt") is None
    assert language_pick(available, "de") is None
    assert language_pick(available, "") is None


def test_a_language_already_present_is_refused_naming_the_field():
    template = multilingual(publish=False)
    with pytest.raises(TemplateValidationError) as caught:
        template_language_create(template=template, language_code="Uk", subject="x", html="y")
    assert caught.value.errors[0].field == "language_code"
    language = template.languages.get(language_code="en")
    with pytest.raises(TemplateValidationError) as caught:
        template_language_update(language=language, language_code="uk")
    assert caught.value.errors[0].field == "language_code"


def test_language_content_follows_the_template_rules():
    template = multilingual(publish=False)
    with pytest.raises(TemplateValidationError) as caught:
        template_language_create(template=template, language_code="de", html="<p>#if($x)</p>")
    assert caught.value.errors[0].field == "html"
    de = template_language_create(
        template=template, language_code="de", subject="Hallo", html="<p>Hallo <b>Welt</b></p>"
    )
    assert de.text_generated and "Hallo" in de.text


def test_publish_snapshots_every_language_and_later_edits_do_not_change_it():
    template = multilingual()
    version = template.versions.get()
    frozen = {row.language_code: row.subject for row in version.languages.all()}
    assert frozen == {
        "en": "Spring sale (English)",
        "uk": "Весняний розпродаж, $!contact.firstName",
    }
    template_language_update(language=template.languages.get(language_code="uk"), subject="Новий")
    assert version.languages.get(language_code="uk").subject.startswith("Весняний")
    with pytest.raises(ValueError):
        version.languages.first().save()


def test_publish_refuses_an_incomplete_language_version():
    template = multilingual(publish=False)
    template_language_create(template=template, language_code="de", html="<p>Hallo</p>")
    with pytest.raises(TemplateValidationError) as caught:
        template_publish(template=template)
    assert [error.field for error in caught.value.errors] == ["languages.de.subject"]
    assert not TemplateVersionLanguage.objects.exists()


def test_the_engine_sends_each_contact_its_language_with_fallback(
    sink, django_assert_max_num_queries
):
    template = multilingual()
    for email, language in [
        ("olena@example.com", "uk"),
        ("george@example.com", "en-GB"),
        ("hans@example.com", "de"),
        ("nobody@example.com", ""),
    ]:
        ContactFactory(email=email, first_name="Pat", language_code=language, tags=["lang"])
    campaign = make_campaign(template=template, audience_filter={"tags": {"$in": ["lang"]}})
    run = CampaignRun.objects.create(
        campaign=campaign, number=1, template_version=template.versions.get()
    )
    pipeline.run_materialise(run=run)
    drain(lambda: engine.run_send(run_id=run.pk))
    subjects = {m["To"]: str(m["Subject"]) for m in sink.messages}
    assert subjects == {
        "olena@example.com": "Весняний розпродаж, Pat",
        "george@example.com": "Spring sale (English)",
        "hans@example.com": "Spring sale, Pat",
        "nobody@example.com": "Spring sale, Pat",
    }
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_the_language_versions_are_read_once_per_task_not_per_row(sink):
    template = multilingual()
    for index in range(6):
        ContactFactory(email=f"c{index}@example.com", language_code="uk", tags=["lang"])
    campaign = make_campaign(template=template, audience_filter={"tags": {"$in": ["lang"]}})
    run = CampaignRun.objects.create(
        campaign=campaign, number=1, template_version=template.versions.get()
    )
    pipeline.run_materialise(run=run)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        drain(lambda: engine.run_send(run_id=run.pk))
    table = TemplateVersionLanguage._meta.db_table
    assert sum(f'FROM "{table}"' in query["sql"] for query in captured.captured_queries) == 1
    assert len(sink.messages) == 6


def test_a_single_message_uses_its_language_code_else_the_contact_language(sink):
    template = multilingual()
    contact = ContactFactory(email="known@example.com", first_name="Iryna", language_code="uk")
    send_request, results = messages.smartsend_start(
        template_id=template.pk,
        recipients=[
            {"locator": "en@example.com", "languageCode": "en-US"},
            {"locator": "plain@example.com"},
            {"contactId": contact.pk},
        ],
    )
    assert all(result.ok for result in results)
    drain(lambda: engine.send_request_process(send_request_id=send_request.pk))
    subjects = {m["To"]: str(m["Subject"]) for m in sink.messages}
    assert subjects == {
        "en@example.com": "Spring sale (English)",
        "plain@example.com": "Spring sale,",
        "known@example.com": "Весняний розпродаж, Iryna",
    }


# --- the API --------------------------------------------------------------------------------


def test_api_adds_lists_reads_changes_and_removes_language_versions(api, full_key):
    template = multilingual(publish=False)
    base = f"/api/herald/templates/{template.pk}/languages"
    response = api.post(
        base, key=full_key, body={"languageCode": "pt-BR", "subject": "Olá", "html": "<p>Oi</p>"}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["languageCode"] == "pt-br" and response.json()["textGenerated"]
    listed = api.get(base, key=full_key).json()
    assert [row["languageCode"] for row in listed] == ["en", "pt-br", "uk"]
    assert api.get(f"{base}/PT-br", key=full_key).json()["subject"] == "Olá"
    response = api.call("PUT", f"{base}/pt-br/", key=full_key, body={"subject": "Promoção"})
    assert response.status_code == 200, response.json()
    assert template.languages.get(language_code="pt-br").subject == "Promoção"
    assert api.delete(f"{base}/pt-br", key=full_key).status_code == 204
    assert api.get(f"{base}/pt-br", key=full_key).status_code == 404


def test_api_refuses_a_duplicate_language_naming_language_code(api, full_key):
    template = multilingual(publish=False)
    base = f"/api/herald/templates/{template.pk}/languages"
    response = api.post(base, key=full_key, body={"languageCode": "UK", "subject": "x"})
    assert response.status_code == 400
    assert "languageCode" in response.json()
    response = api.call("PUT", f"{base}/en", key=full_key, body={"languageCode": "uk"})
    assert response.status_code == 400 and "languageCode" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "languageCode"),
        ({"languageCode": "english!"}, "languageCode"),
        ({"languageCode": "de", "html": "<p>#if($x)</p>"}, "html"),
        ({"languageCode": "de", "subject": "two\nlines"}, "subject"),
    ],
)
def test_api_bad_language_input_is_a_400_naming_the_field(api, full_key, body, field):
    template = multilingual(publish=False)
    response = api.post(f"/api/herald/templates/{template.pk}/languages", key=full_key, body=body)
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_api_publish_names_the_incomplete_language(api, full_key):
    template = multilingual(publish=False)
    api.post(
        f"/api/herald/templates/{template.pk}/languages",
        key=full_key,
        body={"languageCode": "de", "html": "<p>Hallo</p>"},
    )
    response = api.post(f"/api/herald/templates/{template.pk}/publish", key=full_key)
    assert response.status_code == 400
    assert "languages.de.subject" in response.json()


def test_the_versions_api_lists_the_languages_frozen_with_each_version(api, full_key):
    template = multilingual()
    versions = api.get(f"/api/herald/templates/{template.pk}/versions", key=full_key).json()
    assert versions[0]["languages"] == ["en", "uk"]


def test_a_workflow_send_uses_the_contacts_language(sink, django_capture_on_commit_callbacks):
    from marketing.models import Event, EventType
    from marketing.workflows.triggers import workflows_start_for_event
    from tests.workflows.conftest import chain, make_workflow

    template = multilingual()
    contact = ContactFactory(email="flow@example.com", first_name="Taras", language_code="uk")
    make_workflow(chain({"kind": "send", "template_id": template.pk, "channel": "email"}))
    event_type, _ = EventType.objects.get_or_create(key="signup")
    event = Event.objects.create(
        event_type=event_type, key_value=str(contact.pk), params={}, contact=contact
    )
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=event)
    delivery = Delivery.objects.get(locator="flow@example.com")
    assert delivery.language_code == "uk"
    drain(lambda: engine.send_request_process(send_request_id=delivery.send_request_id))
    assert [str(m["Subject"]) for m in sink.messages] == ["Весняний розпродаж, Taras"]
