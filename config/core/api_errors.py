from django.core.exceptions import SuspiciousOperation
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.core.errors import HeraldError


def api_exception_handler(exc, context):
    """DRF's handler, with every error body a JSON object (lists are wrapped in `errors`).

    A body Django refuses while DRF parses it (more form fields than
    DATA_UPLOAD_MAX_NUMBER_FIELDS, a body past DATA_UPLOAD_MAX_MEMORY_SIZE) is the client's
    fault: a JSON 400 saying why, not Django's HTML page.

    A rule's refusal (config.core.errors.HeraldError) answers with its own status and body:
    this is the one place that maps domain errors to HTTP."""
    if isinstance(exc, HeraldError):
        return Response(exc.body(), status=exc.status)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"errors": response.data}
    return response
