from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from integrations import schema  # noqa: F401  (registers the OpenAPI auth extension)
