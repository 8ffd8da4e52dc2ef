from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Marketing workspace"

    def ready(self) -> None:
        # Imported here: these modules import models, which needs the app registry ready.
        from campaigns.abtest import ab_revenue
        from campaigns.analytics import stats_refreshed
        from config.core.events import event_store_install
        from config.core.partitions import partition_dropping
        from contacts.filters.compiler import filter_field_register
        from marketing import (
            attribution,
            privacy,
            retention,
            rfm,
            segment_events,
            services,
            tasks,  # noqa: F401 (registers the tasks enqueued by name)
        )

        # Lower apps emit events and filter on RFM scores through these doors (they cannot
        # import this app, which stands above them).
        event_store_install(emit=services.event_emit, emit_many=services.events_emit_many)
        privacy.register()
        for name, column in rfm.RFM_FILTER_FIELDS.items():
            filter_field_register(name, rfm.rfm_filter(column))
        for name, predicate in segment_events.SEGMENT_FILTER_FIELDS.items():
            filter_field_register(name, predicate)
        stats_refreshed.connect(
            attribution.conversions_on_stats_refresh, dispatch_uid="marketing-conversions"
        )
        ab_revenue.connect(attribution.ab_variant_revenue, dispatch_uid="marketing-ab-revenue")
        partition_dropping.connect(
            retention.ledger_links_clear, dispatch_uid="marketing-ledger-links-clear"
        )
        retention.event_partitions_register()
