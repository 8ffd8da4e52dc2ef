from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from integrations import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from integrations.models import APIKey

        post_save.connect(_forget_key, sender=APIKey, dispatch_uid="integrations-key-forget")
        post_delete.connect(_forget_key, sender=APIKey, dispatch_uid="integrations-key-forget")


def _forget_key(sender, instance, **kwargs) -> None:
    from integrations.services import api_key_forget

    api_key_forget(key_hash=instance.key_hash)
