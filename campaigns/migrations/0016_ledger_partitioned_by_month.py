# The delivery ledger and its history become tables partitioned by month on `period`
# (config.core.partitions): the run's month, or the send request's. Existing rows are copied
# with one INSERT ... SELECT each, their period computed on the way.

import uuid

import django.db.models.deletion
from django.db import migrations, models

import campaigns.models
from config.core.partitions import Partitioned, table_partition

DELIVERY_PERIOD = (
    "date_trunc('month', coalesce(r.started_at, q.created_at, o.created_at)"
    " AT TIME ZONE 'UTC')::date"
)


def partition_ledger(apps, schema_editor):
    table_partition(
        schema_editor,
        spec=Partitioned(table="campaigns_delivery", key="period", key_is_date=True,
                         retention_setting=""),
        fill={"period": DELIVERY_PERIOD},
        joins="LEFT JOIN campaigns_campaignrun r ON r.id = o.run_id "
        "LEFT JOIN campaigns_sendrequest q ON q.id = o.send_request_id",
    )
    table_partition(
        schema_editor,
        spec=Partitioned(table="campaigns_deliveryevent", key="period", key_is_date=True,
                         retention_setting=""),
        fill={"period": "d.period"},
        joins="JOIN campaigns_delivery d ON d.id = o.delivery_id",
    )


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0015_send_kind_viber'),
        ('marketing', '0013_ledger_and_event_links_without_db_keys'),
    ]

    operations = [
        migrations.AlterField(
            model_name='promocode',
            name='delivery',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='promo_codes', to='campaigns.delivery'),
        ),
        migrations.AlterField(
            model_name='deliveryevent',
            name='delivery',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='campaigns.delivery'),
        ),
        migrations.RemoveConstraint(
            model_name='delivery',
            name='delivery_run_contact_channel_step_unique',
        ),
        migrations.RemoveConstraint(
            model_name='deliveryevent',
            name='delivery_event_provider_event_unique',
        ),
        migrations.AlterField(
            model_name='delivery',
            name='request_id',
            field=models.UUIDField(default=uuid.uuid4, editable=False),
        ),
        # Nullable in the database until the copy fills it; NOT NULL on the partitioned table.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AddField(
                    model_name='delivery',
                    name='period',
                    field=models.DateField(null=True),
                ),
                migrations.AddField(
                    model_name='deliveryevent',
                    name='period',
                    field=models.DateField(null=True),
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name='delivery',
                    name='period',
                    field=campaigns.models.LedgerPeriodField(blank=True, editable=False),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name='deliveryevent',
                    name='period',
                    field=campaigns.models.LedgerPeriodField(blank=True, editable=False),
                    preserve_default=False,
                ),
            ],
        ),
        # The unique keys with the partition key in them; built on the partitioned tables by
        # the copy (it recreates every index of the old ones), not on the old tables here.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name='delivery',
                    constraint=models.UniqueConstraint(condition=models.Q(('run__isnull', False)), fields=('run', 'contact', 'channel', 'step', 'period'), name='delivery_run_contact_channel_step_unique'),
                ),
                migrations.AddConstraint(
                    model_name='delivery',
                    constraint=models.UniqueConstraint(fields=('request_id', 'period'), name='delivery_request_id_unique'),
                ),
                migrations.AddConstraint(
                    model_name='deliveryevent',
                    constraint=models.UniqueConstraint(condition=models.Q(('provider_event_id', ''), _negated=True), fields=('delivery', 'provider_event_id', 'period'), name='delivery_event_provider_event_unique'),
                ),
            ],
        ),
        migrations.RunPython(partition_ledger, migrations.RunPython.noop, elidable=False),
        migrations.RunSQL(
            [
                "CREATE UNIQUE INDEX delivery_run_contact_channel_step_unique ON campaigns_delivery"
                " (run_id, contact_id, channel, step, period) WHERE run_id IS NOT NULL",
                "ALTER TABLE campaigns_delivery ADD CONSTRAINT delivery_request_id_unique"
                " UNIQUE (request_id, period)",
                "CREATE UNIQUE INDEX delivery_event_provider_event_unique ON campaigns_deliveryevent"
                " (delivery_id, provider_event_id, period) WHERE NOT (provider_event_id = '')",
            ],
            migrations.RunSQL.noop,
        ),
    ]
