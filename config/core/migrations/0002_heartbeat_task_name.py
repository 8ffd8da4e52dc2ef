"""Task names follow "<app label>.<function>": herald.heartbeat is now core.heartbeat."""

from django.db import migrations

from config.core.task_names import periodic_tasks_renamed


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("django_celery_beat", "0001_initial"),
    ]

    operations = [periodic_tasks_renamed({"herald.heartbeat": "core.heartbeat"})]
