"""OpenAPI description of Herald's API-key authentication (loaded from IntegrationsConfig)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.auth.APIKeyAuthentication"
    name = "apiKeyBasic"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic: any username, an API key as the password.",
        }
