# The delivery ledger and the events become partitioned tables (campaigns 0016, marketing
# 0014): PostgreSQL wants a foreign key to a partitioned table to include its partition key,
# so the links to them keep Django's cascades without a database constraint.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0015_send_kind_viber'),
        ('marketing', '0012_workflow_send_blocks'),
    ]

    operations = [
        migrations.AlterField(
            model_name='order',
            name='attributed_delivery',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attributed_orders', to='campaigns.delivery'),
        ),
        migrations.AlterField(
            model_name='workflowmessage',
            name='delivery',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='workflow_messages', to='campaigns.delivery'),
        ),
        migrations.AlterField(
            model_name='workflowrun',
            name='event',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='marketing.event'),
        ),
    ]
