import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_campaignstep_metricbucket_runstats_delivery_step_and_more"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="deliveryevent",
            index=django.contrib.postgres.indexes.BrinIndex(
                fields=["at"], name="delivery_event_at_brin"
            ),
        ),
    ]
