import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("herald")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(related_name="tasks_analytics")
app.autodiscover_tasks(related_name="tasks_pipeline")
app.autodiscover_tasks(related_name="tasks_lifecycle")
app.autodiscover_tasks(related_name="tasks_events")
app.autodiscover_tasks(["marketing.workflows"])
