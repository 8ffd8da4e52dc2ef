"""A real HTTP server on 127.0.0.1 in a thread, for the import downloader's tests."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        self.server.seen.append({"path": self.path, "headers": dict(self.headers)})
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        route(self)

    def log_message(self, *args):
        pass


@pytest.fixture(name="server")
def server_fixture():
    """A real HTTP server on 127.0.0.1 in a thread; tests add routes to `server.routes`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes = {}
    httpd.seen = []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def body(data: bytes, *, content_length: bool = True):
    def respond(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv; charset=utf-8")
        if content_length:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return respond


def redirect(location: str, status: int = 302):
    def respond(handler):
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return respond
