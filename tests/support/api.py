import base64
import json


class APIClient:
    """Wraps Django's test client for eSputnik-style calls (Basic auth with an API key)."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def basic(secret: str, username: str = "integration") -> str:
        return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()

    def call(self, method: str, path: str, *, key=None, body=None, headers=None, **extra):
        headers = dict(headers or {})
        if key is not None:
            headers["Authorization"] = self.basic(getattr(key, "secret", key))
        kwargs = {"headers": headers, **extra}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def put(self, path, **kw):
        return self.call("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def results_list(results) -> list:
    """The eSputnik v1 message answers' `results` as a list: the API writes the object itself
    when a request names one recipient (or requestId), a list when it names several."""
    return results if isinstance(results, list) else [results]
