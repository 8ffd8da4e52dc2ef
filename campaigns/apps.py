from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # Imported here: the tasks module pulls in models, which Django allows only once the
        # registry is ready. Importing it registers the tasks that producers enqueue by name
        # (so they also run in eager mode) and, through campaigns.lifecycle, connects the
        # lifecycle's receivers of the delivery engine's run signals in every process.
        # The ledger's part of a privacy erasure and of the per-person export.
        from campaigns import (
            privacy,
            tasks,  # noqa: F401
        )

        # Registers `$promo` (promo code pools) with the templates' publish checks.
        from campaigns.promo import assign  # noqa: F401

        # The ledger and its history are partitioned by month (config.core.partitions).
        from campaigns.retention import ledger_partitions_register

        privacy.register()
        ledger_partitions_register()
