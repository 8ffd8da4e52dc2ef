"""OpenAPI description of Herald's API-key authentication (loaded from IntegrationsConfig),
and the schema's postprocessing: the error answers of the API, and bounded ids.

Every API error is a JSON object (config.core.api_errors, config.urls.handler404); the
views document their successes and any error particular to them (409 and the like), and this
hook adds the answers every operation of a kind can give, so the schema lists each status code
a client may meet:

- 400 where the operation reads query parameters or a body (the body names each field),
- 401 everywhere (no, bad or revoked credentials), 403 where credentials are required (a key
  without the right, or a role that may only read),
- 404 where the path names a resource,
- 415 where the operation takes a body (a media type it does not parse).

Path ids are PostgreSQL bigints: the schema bounds them (1 to 2**63 - 1); an id outside that
range names nothing and answers 404.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers

from config.core.api_params import ID_SCHEMA


class APIDocsView(SpectacularSwaggerSplitView):
    """Swagger UI at /api/docs/, from Herald's own page: its language set, Swagger UI's
    colours made readable and its markup repaired for assistive technology (static
    herald/api-docs.css and api-docs.js). Its start-up code is a script file (?script): the
    Content-Security-Policy forbids inline script."""

    template_name = "api/swagger_ui.html"


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "config.core.api_auth.APIKeyAuthentication"
    name = "apiKeyBasic"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic: any username, an API key as the password.",
        }


ERROR = {
    "type": "object",
    "description": "An error: `detail` says what is wrong.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {},
}
INVALID = {
    "type": "object",
    "description": (
        "The request is invalid. Each key names a field or parameter (a nested field as "
        "`parent.child`, a list item as `name[index]`) and holds the list of its problems; "
        "`non_field_errors` is about the request as a whole."
    ),
    "additionalProperties": {},
}
RIGHT_MISSING = {
    "type": "object",
    "description": (
        "The credentials may not use this operation: `missingRight` names what the operation "
        "needs, `keyRight` the API key's right and `grantedBy` the rights that would do."
    ),
    "properties": {
        "detail": {"type": "string"},
        "missingRight": {"type": "string"},
        "keyRight": {"type": "string"},
        "grantedBy": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["detail"],
    "additionalProperties": {},
}

# The views' own error answers (404, 409 and the like) name this component; document_errors
# replaces its schema with ERROR, so every JSON error of the API has the one shape.
ERROR_SERIALIZER = inline_serializer("Error", {"detail": serializers.CharField(required=False)})


def error_response(description: str) -> OpenApiResponse:
    """An error answer particular to an operation, in the API's one error shape."""
    return OpenApiResponse(ERROR_SERIALIZER, description=description)


STANDARD = {
    "400": ("Invalid request", "ValidationErrors"),
    "401": ("No, malformed or revoked credentials", "Error"),
    "403": ("The credentials lack the right for this operation", "RightMissing"),
    "404": ("No such resource", "Error"),
    "415": ("Unsupported media type of the body", "Error"),
}


def _response(code: str) -> dict:
    description, component = STANDARD[code]
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _is_id(parameter: dict) -> bool:
    schema = parameter.get("schema", {})
    return schema.get("type") == "integer" or schema.get("pattern", "").startswith("^[0-9]")


def document_errors(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"Error": ERROR, "ValidationErrors": INVALID, "RightMissing": RIGHT_MISSING})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            parameters = operation.get("parameters", [])
            in_path = [p for p in parameters if p["in"] == "path"]
            for parameter in in_path:
                if _is_id(parameter):
                    parameter["schema"] = dict(ID_SCHEMA)
            codes = ["401"]
            if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
                codes.append("400")
            if any(requirement for requirement in operation.get("security", [])):
                codes.append("403")
            if in_path:
                codes.append("404")
            if "requestBody" in operation:
                codes.append("415")
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, _response(code))
    return result
