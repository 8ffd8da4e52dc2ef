# Stored webhook requests become a table partitioned by month on received_at
# (config.core.partitions), so retention drops old months instead of deleting rows.

from django.db import migrations

from config.core.partitions import Partitioned, table_partition


def partition_webhook_requests(apps, schema_editor):
    table_partition(
        schema_editor,
        spec=Partitioned(table="integrations_webhookrequest", key="received_at"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0004_webhook_queued_defer'),
    ]

    operations = [
        migrations.RunPython(partition_webhook_requests, migrations.RunPython.noop, elidable=False),
    ]
