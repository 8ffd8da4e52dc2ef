"""For data migrations that rename Celery tasks: django-celery-beat keeps each schedule's task
name in its PeriodicTask rows, and a row left with the old name would fire a task nobody
registers any more."""

from django.db import migrations


def periodic_tasks_renamed(renames: dict[str, str]) -> migrations.RunPython:
    """A migration operation that rewrites PeriodicTask.task old → new (and back on reverse)."""

    def rename(apps, mapping: dict[str, str]) -> None:
        periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
        for old, new in mapping.items():
            periodic_task.objects.filter(task=old).update(task=new)

    def forwards(apps, schema_editor) -> None:
        rename(apps, renames)

    def backwards(apps, schema_editor) -> None:
        rename(apps, {new: old for old, new in renames.items()})

    return migrations.RunPython(forwards, backwards)
