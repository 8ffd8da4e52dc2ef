from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from integrations import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from integrations.models import APIKey

        post_save.connect(_forget_key, sender=APIKey, dispatch_uid="integrations-key-forget")
        post_delete.connect(_forget_key, sender=APIKey, dispatch_uid="integrations-key-forget")
        # Cached keys carry their owner: a user deactivated or changed here applies at once.
        user_model = get_user_model()
        post_save.connect(_forget_keys, sender=user_model, dispatch_uid="integrations-user-forget")
        post_delete.connect(
            _forget_keys, sender=user_model, dispatch_uid="integrations-user-forget"
        )


def _forget_key(sender, instance, **kwargs) -> None:
    from integrations.services import api_key_forget

    api_key_forget(key_hash=instance.key_hash)


def _forget_keys(sender, **kwargs) -> None:
    from integrations.services import api_key_forget

    api_key_forget()
