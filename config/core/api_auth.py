"""API authentication: HTTP Basic with an API key as password (eSputnik style), JWT, session.

Every API error is JSON. 401: no or bad credentials. 403: the key or user lacks the right the
endpoint needs, and the body names that right.
"""

import base64
import binascii

from auditlog.context import auditlog_value
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from config.core.api_keys import api_key_authenticate
from config.core.models import APIKey, Scope, rights_granting
from config.core.roles import Role, has_role


class APIKeyAuthentication(BaseAuthentication):
    """`Authorization: Basic base64(any-username:API-KEY)`."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"basic":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Basic authorization header.")
        try:
            decoded = base64.b64decode(header[1], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed(
                "Basic credentials are not valid base64."
            ) from None
        _, sep, secret = decoded.partition(":")
        if not sep or not secret:
            raise exceptions.AuthenticationFailed("Basic credentials must be 'username:api-key'.")
        key = api_key_authenticate(secret=secret)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        _set_audit_actor(key.created_by)
        return (key.created_by or AnonymousUser(), key)

    def authenticate_header(self, request):
        return 'Basic realm="Herald API"'


def _set_audit_actor(user) -> None:
    # django-auditlog's middleware picks the actor before DRF authenticates, so API writes
    # would be anonymous; point its per-request context at the key's owner instead.
    context = auditlog_value.get(None)
    if context is not None and user is not None:
        context["actor"] = user


def required_scope(view, method: str) -> str:
    """The view's `required_scope`: one scope, or a dict by HTTP method when the methods of
    one path need different rights (HEAD and OPTIONS need what GET needs). Views without it,
    and methods without an entry, need the full right."""
    scope = getattr(view, "required_scope", Scope.MANAGE)
    if isinstance(scope, dict):
        scope = scope.get("GET" if method in ("HEAD", "OPTIONS") else method, Scope.MANAGE)
    return scope


class HasAPIRight(permissions.BasePermission):
    """Checks the view's required scope against the API key's right or the user's role.

    Users (JWT or session): admins and marketers may do everything, viewers only read.
    """

    def has_permission(self, request, view) -> bool:
        scope = required_scope(view, request.method)
        if isinstance(request.auth, APIKey):
            if not request.auth.grants(scope):
                granted_by = rights_granting(scope)
                raise exceptions.PermissionDenied(
                    {
                        "detail": f"This API key lacks the right for this endpoint ({scope}); "
                        f"rights that grant it: {', '.join(granted_by)}.",
                        "missingRight": scope,
                        "keyRight": request.auth.rights,
                        "grantedBy": granted_by,
                    }
                )
            return True
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        if request.method in permissions.SAFE_METHODS and has_role(user, Role.VIEWER):
            return True
        if has_role(user, Role.MARKETER):
            return True
        raise exceptions.PermissionDenied(
            {"detail": "Your role may only read.", "missingRight": "write"}
        )
