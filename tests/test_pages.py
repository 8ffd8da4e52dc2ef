import pytest
from auditlog.models import LogEntry

from config.core.models import APIKey, Organisation
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SECTIONS = ["contacts", "segments", "templates", "campaigns", "automation", "orders"]


def test_anonymous_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_lands_on_dashboard_with_navigation(client, marketer):
    response = client.post(
        "/login/", {"username": marketer.username, "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Dashboard</h1>" in page
    for label in [
        "Dashboard",
        "Contacts",
        "Segments",
        "Templates",
        "Campaigns",
        "Automation",
        "Orders",
        "Integrations",
        "Settings",
    ]:
        assert f">{label}</a>" in page


def test_wrong_password_shows_a_form_error(client, marketer):
    response = client.post("/login/", {"username": marketer.username, "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


def test_logout_ends_the_session(client, marketer):
    client.force_login(marketer)
    client.post("/logout/")
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("section", SECTIONS)
def test_sections_show_an_honest_empty_state(client, viewer, section):
    client.force_login(viewer)
    response = client.get(f"/{section}/")
    assert response.status_code == 200
    assert 'data-testid="empty-state"' in response.content.decode()


def test_user_without_role_is_forbidden(client, outsider):
    client.force_login(outsider)
    assert client.get("/").status_code == 403


@pytest.mark.parametrize("path", ["/settings/", "/settings/api-keys/", "/settings/audit-log/"])
@pytest.mark.parametrize("who, status", [("admin_user", 200), ("marketer", 403), ("viewer", 403)])
def test_settings_pages_are_for_admins_only(client, request, path, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(path).status_code == status


def test_admin_edits_organisation_and_the_change_is_audited(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/settings/",
        {
            "name": "Acme",
            "default_sender_name": "Acme news",
            "default_sender_email": "news@acme.test",
            "time_zone": "Europe/Berlin",
            "language": "en",
        },
        follow=True,
    )
    assert response.status_code == 200
    organisation = Organisation.load()
    assert (organisation.name, organisation.time_zone) == ("Acme", "Europe/Berlin")
    entry = LogEntry.objects.get_for_object(organisation).latest("timestamp")
    assert entry.actor == admin_user
    assert "name" in entry.changes_dict
    assert "Acme" in client.get("/settings/audit-log/").content.decode()


def test_bad_time_zone_is_a_form_error_and_nothing_changes(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/settings/",
        {
            "name": "Acme",
            "default_sender_name": "",
            "default_sender_email": "",
            "time_zone": "Mars/Base",
        },
    )
    assert response.status_code == 200
    assert "not a known IANA time zone" in response.content.decode()
    assert Organisation.load().name == "My organisation"


def test_admin_creates_key_on_the_page_and_sees_it_once(client, admin_user, api):
    client.force_login(admin_user)
    response = client.post("/settings/api-keys/", {"name": "Shop", "rights": "events_contacts"})
    page = response.content.decode()
    key = APIKey.objects.get(name="Shop")
    secret = page.split('data-testid="new-secret">')[1].split("<")[0]
    assert key.rights == "events_contacts"
    assert key.created_by == admin_user
    assert api.get("/api/v1/account/info", key=secret).status_code == 200
    assert secret not in client.get("/settings/api-keys/").content.decode()


def test_key_form_errors_are_shown(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/settings/api-keys/", {"name": "", "rights": "superpowers"})
    page = response.content.decode()
    assert "This field is required." in page
    assert "Select a valid choice" in page
    assert not APIKey.objects.exists()


def test_admin_revokes_key_on_the_page(client, admin_user, full_key, api):
    client.force_login(admin_user)
    client.post(f"/settings/api-keys/{full_key.pk}/revoke/")
    full_key.refresh_from_db()
    assert full_key.revoked_at is not None
    assert api.get("/api/v1/account/info", key=full_key).status_code == 401


def test_marketer_cannot_revoke_keys(client, marketer, full_key):
    client.force_login(marketer)
    assert client.post(f"/settings/api-keys/{full_key.pk}/revoke/").status_code == 403
    full_key.refresh_from_db()
    assert full_key.revoked_at is None


def test_admin_site_opens_for_admin(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/core/apikey/").status_code == 200


def test_admin_site_refuses_marketer(client, marketer):
    client.force_login(marketer)
    assert client.get("/admin/").status_code == 302


def test_integrations_page_names_the_mail_transport(client, viewer):
    client.force_login(viewer)
    response = client.get("/integrations/")
    assert 'data-testid="email-transport"' in response.content.decode()


def test_api_docs_and_schema(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    assert "/api/v1/account/info" in schema.content.decode()
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()


def test_static_assets_from_npm_are_served(client):
    for path in [
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/pico/pico.min.css",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path


def test_repeated_failed_logins_lock_the_account_out(client, marketer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post("/login/", {"username": marketer.username, "password": "wrong"})
    response = client.post("/login/", {"username": marketer.username, "password": PASSWORD})
    assert response.status_code == 429
    assert client.get("/").status_code == 302
