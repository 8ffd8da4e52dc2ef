from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Marketing workspace"

    def ready(self) -> None:
        from marketing import roles

        # Runs after every migrate, so groups pick up permissions of models added later.
        post_migrate.connect(roles.sync_role_groups, dispatch_uid="herald-sync-role-groups")
