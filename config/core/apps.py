from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


class CoreConfig(AppConfig):
    name = "config.core"
    label = "core"
    verbose_name = "Workspace"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once the app registry
        # is ready, and the schema hooks register themselves with drf-spectacular on import.
        from django.contrib.auth import get_user_model

        from config.core import roles, schema  # noqa: F401
        from config.core.api_keys import api_key_forget
        from config.core.models import APIKey
        from config.core.partitions import partitions_ensure_all

        # Runs after every migrate, so groups pick up permissions of models added later.
        post_migrate.connect(roles.sync_role_groups, dispatch_uid="herald-sync-role-groups")
        # And the month partitions of the tables the apps registered (config.core.partitions),
        # so a fresh database can take rows at once.
        post_migrate.connect(partitions_ensure_all, dispatch_uid="herald-partitions-ensure")

        def forget_key(sender, instance, **kwargs) -> None:
            api_key_forget(key_hash=instance.key_hash)

        def forget_keys(sender, **kwargs) -> None:
            api_key_forget()

        post_save.connect(forget_key, sender=APIKey, dispatch_uid="core-key-forget", weak=False)
        post_delete.connect(forget_key, sender=APIKey, dispatch_uid="core-key-forget", weak=False)
        # Cached keys carry their owner: a user deactivated or changed here applies at once.
        user_model = get_user_model()
        post_save.connect(
            forget_keys, sender=user_model, dispatch_uid="core-user-forget", weak=False
        )
        post_delete.connect(
            forget_keys, sender=user_model, dispatch_uid="core-user-forget", weak=False
        )
