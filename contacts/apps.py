from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self) -> None:
        # Imported here: the module imports models, which needs the app registry ready.
        from contacts import privacy

        privacy.register()
