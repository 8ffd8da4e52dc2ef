import pytest

from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db


def test_admin_lists_and_shows_workflows_versions_and_runs(client, admin_user, welcome):
    from marketing.workflows.models import WorkflowRun
    from tests.contacts.factories import ContactFactory

    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    workflow = make_workflow(chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}))
    run = WorkflowRun.objects.create(
        workflow=workflow, version=workflow.current_version, contact=ContactFactory()
    )
    for path in (
        "/admin/marketing/workflow/",
        f"/admin/marketing/workflow/{workflow.pk}/change/",
        "/admin/marketing/workflowversion/",
        f"/admin/marketing/workflowversion/{workflow.current_version.pk}/change/",
        "/admin/marketing/workflowrun/",
        f"/admin/marketing/workflowrun/{run.pk}/change/",
    ):
        assert client.get(path).status_code == 200, path
