import importlib
import pkgutil

from django.apps import AppConfig

from integrations import providers


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Each module of integrations.providers registers its provider kinds when imported
        # (they import models, so not before the registry is ready); all are loaded here,
        # so a new provider module needs no line anywhere else.
        for module in pkgutil.iter_modules(providers.__path__):
            importlib.import_module(f"{providers.__name__}.{module.name}")

        # Provider webhooks' part of a privacy erasure.
        from integrations import privacy

        privacy.register()

        # Stored webhook requests are partitioned by month (config.core.partitions).
        from integrations.retention import webhook_partitions_register

        webhook_partitions_register()
