# Events become a table partitioned by month on created_at (config.core.partitions); the
# dedupe of derived events moves from a unique key on the table to EventSourceKey, which
# takes over the keys already stored.

import django.db.models.deletion
from django.db import migrations, models

from config.core.partitions import Partitioned, table_partition


def partition_events(apps, schema_editor):
    table_partition(
        schema_editor, spec=Partitioned(table="marketing_event", key="created_at")
    )


class Migration(migrations.Migration):

    dependencies = [
        ('marketing', '0013_ledger_and_event_links_without_db_keys'),
    ]

    operations = [
        migrations.CreateModel(
            name='EventRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('contact_id', models.BigIntegerField(blank=True, null=True)),
                ('events', models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='EventSourceKey',
            fields=[
                ('key', models.CharField(max_length=100, primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name='event',
            name='event_source_key_unique',
        ),
        migrations.AddField(
            model_name='eventrollup',
            name='event_type',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='marketing.eventtype'),
        ),
        migrations.AddIndex(
            model_name='eventrollup',
            index=models.Index(fields=['hour', 'event_type'], name='event_rollup_hour'),
        ),
        migrations.AddConstraint(
            model_name='eventrollup',
            constraint=models.UniqueConstraint(fields=('event_type', 'hour', 'contact_id'), name='event_rollup_unique', nulls_distinct=False),
        ),
        migrations.RunSQL(
            "INSERT INTO marketing_eventsourcekey (key, created_at)"
            " SELECT source_key, min(created_at) FROM marketing_event"
            " WHERE source_key <> '' GROUP BY source_key",
            migrations.RunSQL.noop,
        ),
        migrations.RunPython(partition_events, migrations.RunPython.noop, elidable=False),
    ]
