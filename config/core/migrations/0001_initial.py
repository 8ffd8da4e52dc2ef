"""The organisation, heartbeats and API keys move from marketing and integrations to the
ground floor (config.core). Only Django's model state moves here; the tables are renamed in
place, and the content types follow, so admin permissions and audit-log entries stay."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import config.core.models

MOVED = [
    ("marketing", "organisation", "marketing_organisation", "core_organisation"),
    ("marketing", "heartbeat", "marketing_heartbeat", "core_heartbeat"),
    ("integrations", "apikey", "integrations_apikey", "core_apikey"),
]


def content_types_follow(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for old_app, model, _, _ in MOVED:
        content_type.objects.filter(app_label=old_app, model=model).update(app_label="core")


def content_types_return(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for old_app, model, _, _ in MOVED:
        content_type.objects.filter(app_label="core", model=model).update(app_label=old_app)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("marketing", "0005_order_attribution"),
        ("integrations", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.CreateModel(
            name="Heartbeat",
            fields=[
                ("name", models.CharField(max_length=50, primary_key=True, serialize=False)),
                ("seen_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="Organisation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(default="My organisation", max_length=200)),
                ("default_sender_name", models.CharField(blank=True, max_length=200)),
                ("default_sender_email", models.EmailField(blank=True, max_length=254)),
                (
                    "time_zone",
                    models.CharField(
                        default="UTC",
                        max_length=64,
                        validators=[config.core.models.validate_time_zone],
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("pk", 1)), name="organisation_singleton"
                    )
                ],
            },
        ),
    
        migrations.CreateModel(
            name="APIKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "prefix",
                    models.CharField(
                        help_text="First characters, to recognise the key.", max_length=12
                    ),
                ),
                ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                (
                    "rights",
                    models.CharField(
                        choices=[
                            ("full", "Full access"),
                            ("events", "Events"),
                            ("events_contacts", "Events and contacts"),
                            ("contacts", "Contacts add/update"),
                            ("messages", "Messages"),
                        ],
                        default="full",
                        max_length=20,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "API key",
                "ordering": ["-created_at"],
            },
        ),
    ],
            database_operations=[
                migrations.RunSQL(
                    f"ALTER TABLE {old} RENAME TO {new}", f"ALTER TABLE {new} RENAME TO {old}"
                )
                for _, _, old, new in MOVED
            ],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
