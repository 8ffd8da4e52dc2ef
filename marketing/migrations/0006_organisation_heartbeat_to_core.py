"""The organisation and heartbeats now belong to the ground floor (core.0001 renames the tables)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0005_order_attribution"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Organisation"),
                migrations.DeleteModel(name="Heartbeat"),
            ]
        )
    ]
