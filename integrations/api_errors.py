from rest_framework.views import exception_handler


def api_exception_handler(exc, context):
    """DRF's handler, with every error body a JSON object (lists are wrapped in `errors`)."""
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"errors": response.data}
    return response
