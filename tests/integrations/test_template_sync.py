"""Templates kept at a provider (the local provider-contract service): imported page by
page and resumable without duplicates, published back with the provider's id kept, and the
provider's copy previewed through a cache."""

import pytest
from django.core.cache import cache

from config.core.errors import FieldError
from config.core.models import Integration
from config.core.secrets import secrets_seal
from integrations.models import TemplateImport
from integrations.template_sync import (
    ProviderRefused,
    template_import_run,
    template_import_start,
    template_preview_html,
    template_publish_external,
)
from templates.models import MessageTemplate, TemplateVersion
from templates.services import template_create
from tests.support.fake_contract_service import ContractService

pytestmark = pytest.mark.django_db

API_KEY = "contract-key"


@pytest.fixture
def service():
    with ContractService(api_key=API_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def connect(service, api_key=API_KEY, name="Contract ESP") -> Integration:
    return Integration.objects.create(
        kind="external",
        name=name,
        channels=["email"],
        settings={"base_url": service.url(), "timeout": 5},
        secrets_sealed=secrets_seal({"api_key": api_key, "webhook_secret": "s"}),
    )


def start(integration, django_capture_on_commit_callbacks) -> TemplateImport:
    """Start (or resume) an import; its task is enqueued on commit, run here in-process."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = template_import_start(integration=integration, user=None)
    assert len(callbacks) == 1  # the task would be enqueued once
    return job


def page_requests(service) -> list[str]:
    return [path for method, path, _h, _b in service.requests if path.startswith("/templates?")]


def test_an_import_reads_pages_of_50_until_a_short_page(
    service, django_capture_on_commit_callbacks
):
    service.templates_add(120)
    integration = connect(service)
    job = start(integration, django_capture_on_commit_callbacks)

    job = template_import_run(import_id=job.pk)

    assert (job.state, job.offset, job.created, job.updated) == ("finished", 120, 120, 0)
    assert page_requests(service) == [
        "/templates?offset=0&limit=50",
        "/templates?offset=50&limit=50",
        "/templates?offset=100&limit=50",
    ]
    templates = MessageTemplate.objects.filter(integration=integration)
    assert templates.count() == 120
    t7 = templates.get(external_id="t-7")
    assert (t7.name, t7.subject, t7.version) == ("Template 7", "Subject 7", 1)
    assert "Template number 7" in t7.html
    assert TemplateVersion.objects.filter(template__integration=integration).count() == 120


def test_an_import_interrupted_after_two_pages_resumes_without_duplicates(
    service, django_capture_on_commit_callbacks
):
    service.templates_add(120)
    integration = connect(service)
    job = start(integration, django_capture_on_commit_callbacks)
    # Pages one and two arrive; the third request finds the service down.
    original = service.handle
    calls = {"n": 0}

    def flaky(method, path, headers, body):
        if path.startswith("/templates?"):
            calls["n"] += 1
            if calls["n"] == 3:
                return 503, {"error": "maintenance window"}, None
        return original(method, path, headers, body)

    service.handle = flaky
    job = template_import_run(import_id=job.pk)
    assert (job.state, job.offset, job.created) == ("failed", 100, 100)
    assert "503" in job.error and "maintenance window" in job.error

    # Started again: the same import resumes at its offset.
    resumed = start(integration, django_capture_on_commit_callbacks)
    assert resumed.pk == job.pk and resumed.state == "running"
    job = template_import_run(import_id=job.pk)

    assert (job.state, job.offset, job.created) == ("finished", 120, 120)
    assert MessageTemplate.objects.filter(integration=integration).count() == 120
    assert page_requests(service)[-1] == "/templates?offset=100&limit=50"


def test_a_page_imported_again_after_a_lost_offset_duplicates_nothing(
    service, django_capture_on_commit_callbacks
):
    service.templates_add(60)
    integration = connect(service)
    job = template_import_run(import_id=start(integration, django_capture_on_commit_callbacks).pk)
    assert job.created == 60
    # As if the worker had died before it recorded its progress: the pages come again.
    TemplateImport.objects.filter(pk=job.pk).update(state="running", offset=0)

    job = template_import_run(import_id=job.pk)

    assert MessageTemplate.objects.filter(integration=integration).count() == 60
    assert (job.created, job.updated) == (60, 0)  # nothing new, nothing changed
    assert TemplateVersion.objects.filter(template__integration=integration).count() == 60


def test_a_changed_template_gets_a_new_version_on_the_next_import(
    service, django_capture_on_commit_callbacks
):
    service.templates_add(3)
    integration = connect(service)
    template_import_run(import_id=start(integration, django_capture_on_commit_callbacks).pk)
    service.templates[1]["html"] = "<p>Template number 2, new prices</p>"

    job = template_import_run(import_id=start(integration, django_capture_on_commit_callbacks).pk)

    assert (job.created, job.updated) == (0, 1)
    changed = MessageTemplate.objects.get(integration=integration, external_id="t-2")
    assert changed.version == 2
    assert "new prices" in changed.versions.get(number=2).html
    assert MessageTemplate.objects.get(integration=integration, external_id="t-1").version == 1


def test_wrong_credentials_fail_the_import_with_the_providers_message(
    service, django_capture_on_commit_callbacks
):
    service.templates_add(5)
    integration = connect(service, api_key="wrong")
    job = template_import_run(import_id=start(integration, django_capture_on_commit_callbacks).pk)
    assert job.state == "failed"
    assert "invalid API key" in job.error
    assert not MessageTemplate.objects.exists()


def test_a_provider_without_templates_cannot_import(django_capture_on_commit_callbacks):
    smtp_like = Integration.objects.create(kind="http", name="Gateway", channels=["email"])
    with pytest.raises(FieldError) as refused:
        template_import_start(integration=smtp_like, user=None)
    assert refused.value.field == "integration"


# --- publish and preview --------------------------------------------------------------------


def test_publish_returns_and_keeps_the_providers_id_and_publishing_again_updates_it(service):
    integration = connect(service)
    template = template_create(name="Welcome", subject="Hi", html="<p>Welcome aboard</p>")

    external_id = template_publish_external(template=template, integration=integration)

    template.refresh_from_db()
    assert (template.external_id, template.integration_id) == (external_id, integration.pk)
    assert service.templates[-1] == {
        "id": external_id,
        "name": "Welcome",
        "subject": "",
        "html": "<p>Welcome aboard</p>",
    }
    template.html = "<p>Welcome aboard, again</p>"
    template.save()
    assert template_publish_external(template=template) == external_id
    assert len(service.templates) == 1
    assert service.templates[0]["html"] == "<p>Welcome aboard, again</p>"


def test_publish_with_the_provider_refusing_says_why_and_keeps_the_template(service):
    integration = connect(service, api_key="wrong")
    template = template_create(name="Welcome", subject="Hi", html="<p>x</p>")
    with pytest.raises(ProviderRefused) as refused:
        template_publish_external(template=template, integration=integration)
    assert "invalid API key" in refused.value.message
    template.refresh_from_db()
    assert template.external_id is None
    with pytest.raises(FieldError):
        template_publish_external(template=template)  # no integration named or kept


def test_the_preview_of_the_providers_copy_is_sanitised_and_cached(service):
    service.templates_add(1)
    service.templates[0]["html"] = "<p>Hello</p><script>alert(1)</script>"
    integration = connect(service)
    template = MessageTemplate.objects.create(
        name="Remote", integration=integration, external_id="t-1"
    )

    first = template_preview_html(template=template)
    second = template_preview_html(template=template)

    assert "Hello" in first and "<script" not in first
    assert second == first
    html_requests = [path for _m, path, _h, _b in service.requests if path.endswith("/html")]
    assert html_requests == ["/templates/t-1/html"]
