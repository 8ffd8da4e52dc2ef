"""Template services: validation on save, sanitising, derived text, publishing, rendering."""

import pytest
from auditlog.models import LogEntry

from contacts.models import ChannelType
from templates.models import MessageTemplate, TemplateVersion
from templates.services import (
    TemplateValidationError,
    contact_context,
    template_create,
    template_publish,
    template_render,
    template_update,
)
from tests.contacts.factories import ContactFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db

HTML = (
    "<style>.price { color: #c00 }</style>"
    "<h1>Hi $!contact.firstName</h1>"
    "<p>#if($data.get('discount'))Save $!data.get('discount')#else Welcome#end</p>"
    "<table>#foreach($item in $data.get('items'))"
    "<tr><td>$item.get('name')</td><td class=\"price\">$item.get('price')</td></tr>#end</table>"
    "<script>alert(1)</script>"
)


def _email(**overrides):
    values = {
        "name": "Welcome",
        "subject": "Hello $!contact.firstName",
        "preheader": "Only for $!contact.firstName",
        "from_name": "Shop",
        "from_email": "news@shop.example",
        "html": HTML,
    }
    values.update(overrides)
    return template_create(**values)


def test_create_sanitises_html_and_derives_text():
    template = _email()
    assert "<script>" not in template.html and "alert" not in template.html
    assert "#foreach($item in $data.get('items'))" in template.html
    assert template.text_generated
    assert "Hi $!contact.firstName" in template.text
    assert "#if($data.get('discount'))Save $!data.get('discount')#else Welcome#end" in template.text


def test_syntax_error_names_field_line_and_column():
    with pytest.raises(TemplateValidationError) as caught:
        _email(html="<p>ok</p>\n<p>#if($data.x)never closed</p>", subject="Hi $data.__class__")
    errors = {error.field: error for error in caught.value.errors}
    assert (errors["html"].line, errors["html"].column) == (2, 32)
    assert "#end" in errors["html"].message
    assert (errors["subject"].line, errors["subject"].column) == (1, 10)
    assert "html: " in str(caught.value) and "(line 2, column 32)" in str(caught.value)
    assert not MessageTemplate.objects.exists()


def test_other_field_rules():
    with pytest.raises(TemplateValidationError) as caught:
        template_create(name=" ", channel="fax", subject="a\nb", from_email="nope")
    assert {error.field for error in caught.value.errors} == {
        "name",
        "channel",
        "subject",
        "from_email",
    }


def test_update_html_regenerates_derived_text_but_keeps_written_text():
    template = _email()
    template_update(template=template, html="<p>New $!data.x</p>")
    assert template.text.strip() == "New $!data.x"
    template_update(template=template, text="My own text $!data.x")
    template_update(template=template, html="<p>Newer</p>")
    template.refresh_from_db()
    assert template.text == "My own text $!data.x" and not template.text_generated
    template_update(template=template, text="")
    assert template.text.strip() == "Newer" and template.text_generated


def test_update_with_an_error_changes_nothing():
    template = _email()
    with pytest.raises(TemplateValidationError):
        template_update(template=template, sms_text="#foreach($x in $y)")
    template.refresh_from_db()
    assert template.sms_text == ""


def test_publish_takes_numbered_immutable_snapshots(admin_user):
    template = _email()
    first = template_publish(template=template, user=admin_user)
    template_update(template=template, subject="Changed")
    second = template_publish(template=template, user=admin_user)
    template.refresh_from_db()
    assert (first.number, second.number, template.version) == (1, 2, 2)
    first.refresh_from_db()
    assert first.subject == "Hello $!contact.firstName" and second.subject == "Changed"
    assert first.published_by == admin_user
    first.subject = "tampered"
    with pytest.raises(ValueError, match="cannot be changed"):
        first.save()


def test_publish_refuses_incomplete_messages():
    template = _email(subject="")
    with pytest.raises(TemplateValidationError) as caught:
        template_publish(template=template)
    assert caught.value.errors[0].field == "subject"
    sms = template_create(name="SMS", channel=ChannelType.SMS)
    with pytest.raises(TemplateValidationError) as caught:
        template_publish(template=sms)
    assert caught.value.errors[0].field == "sms_text"
    assert not TemplateVersion.objects.exists()


def test_render_email_personalises_inlines_css_and_escapes_values():
    template = _email()
    message = template_render(
        template=template,
        contact={"firstName": "<Ann>"},
        data={"discount": "5%", "items": [{"name": "Tea", "price": 3}]},
    )
    assert message.subject == "Hello <Ann>"
    assert "Hi &lt;Ann&gt;" in message.html and "<Ann>" not in message.html
    assert "Save 5%" in message.html
    assert 'class="price" style="color: #c00;">3</td>' in message.html
    assert "Only for &lt;Ann&gt;" in message.html and "display:none" in message.html
    assert "Hi <Ann>" in message.text and "Save 5%" in message.text and "Tea" in message.text


def test_rendered_subject_cannot_inject_header_lines():
    template = _email(subject="Order $!data.get('n')")
    message = template_render(template=template, contact={}, data={"n": "1\r\nBcc: x@evil.example"})
    assert message.subject == "Order 1 Bcc: x@evil.example"


def test_render_uses_the_published_version_not_the_draft():
    template = _email(subject="v1")
    version = template_publish(template=template)
    template_update(template=template, subject="draft")
    assert template_render(version=version, contact={}, data={}).subject == "v1"
    assert template_render(template=template, contact={}, data={}).subject == "draft"


def test_render_sms_and_other_channels_use_the_text():
    sms = template_create(
        name="SMS", channel=ChannelType.SMS, sms_text="Code $data.code for $contact.firstName"
    )
    message = template_render(template=sms, contact={"firstName": "Ann"}, data={"code": 42})
    assert message == type(message)(subject="", html="", text="Code 42 for Ann")


def test_contact_context_exposes_fields_and_custom_fields_by_id_key_and_name():
    city = CustomFieldFactory(name="City", key="city")
    contact = ContactFactory(first_name="Ann", fields={str(city.pk): "Paris"}, tags=["vip"])
    template = template_create(
        name="SMS",
        channel=ChannelType.SMS,
        sms_text=(
            f"$contact.firstName $contact.fields.get('{city.pk}') $contact.fields.city "
            "$contact.fields.get('City') $contact.tags.contains('vip') $contact.email"
        ),
    )
    message = template_render(template=template, contact=contact, data={})
    assert message.text == f"Ann Paris Paris Paris true {contact.email}"
    assert contact_context(contact, custom_fields=[])["fields"] == {}


def test_template_changes_are_audited():
    template = _email()
    template_update(template=template, name="Renamed")
    entries = LogEntry.objects.get_for_object(template)
    assert entries.count() == 2
    assert "name" in entries.latest("timestamp").changes_dict


def test_links_assembled_from_data_cannot_become_script_urls():
    template = _email(html="<a href=\"$data.get('link')\">a</a><img src='$data.get(\"img\")'>")
    message = template_render(
        template=template,
        contact={},
        data={"link": " JavaScript:alert(1)", "img": "data:image/svg+xml,x"},
    )
    assert "javascript:" not in message.html.lower() and "data:" not in message.html
    assert message.html.count("#blocked:") == 2


def test_script_url_written_into_the_template_is_refused_on_save():
    with pytest.raises(TemplateValidationError) as caught:
        _email(html='<a href="#if(true)javascript:alert(1)#end">b</a>')
    assert caught.value.errors[0].field == "html"
    assert "HTML sanitising removed it" in caught.value.errors[0].message
