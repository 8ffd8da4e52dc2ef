"""The workflow tick's Celery task is now named after its app (marketing.tasks): stored beat
schedules follow."""

from django.db import migrations

from config.core.task_names import periodic_tasks_renamed


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0006_organisation_heartbeat_to_core"),
        ("django_celery_beat", "0001_initial"),
    ]

    operations = [periodic_tasks_renamed({"workflows.tick": "marketing.workflows_tick"})]
