"""A local stand-in for Amazon SNS's subscription confirmation endpoint.

SNS sends a SubscriptionConfirmation whose SubscribeURL is
`https://sns.<region>.amazonaws.com/?Action=ConfirmSubscription&TopicArn=…&Token=…`; the
subscriber confirms by loading it (GET) and SNS answers a ConfirmSubscriptionResponse XML
document with the new SubscriptionArn. A token it does not know is answered 400 with an
ErrorResponse (InvalidParameter), as SNS does.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CONFIRMED = """<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult><SubscriptionArn>{arn}:{token}</SubscriptionArn>
  </ConfirmSubscriptionResult>
  <ResponseMetadata><RequestId>7a2f8e3c-0000-4000-8000-000000000000</RequestId></ResponseMetadata>
</ConfirmSubscriptionResponse>"""
INVALID = """<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error><Type>Sender</Type><Code>InvalidParameter</Code>
  <Message>Invalid token</Message></Error>
</ErrorResponse>"""


class SNSServer:
    """`with SNSServer(tokens={"tok"}) as sns:` … `sns.url` is its base URL, `sns.confirmed`
    the (TopicArn, Token) pairs confirmed."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = tokens
        self.confirmed: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                action = query.get("Action", [""])[0]
                arn, token = query.get("TopicArn", [""])[0], query.get("Token", [""])[0]
                if action == "ConfirmSubscription" and token in server.tokens:
                    server.confirmed.append((arn, token))
                    status, body = 200, CONFIRMED.format(arn=arn, token=token)
                else:
                    status, body = 400, INVALID
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SNSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
