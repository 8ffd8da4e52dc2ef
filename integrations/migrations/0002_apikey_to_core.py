"""API keys now belong to the ground floor (core.0001 renames the table)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
        ("core", "0001_initial"),
        ("campaigns", "0006_sendrequest_api_key_in_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="APIKey")]
        )
    ]
