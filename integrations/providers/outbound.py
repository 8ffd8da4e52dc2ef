"""HTTP calls to the URLs admins configure for providers (an ESP's or Viber's API base URL,
the Telegram Bot API URL, an SNS endpoint): urllib as the providers use it, but only http(s),
and a redirect is followed only to an http(s) URL outside Herald's own network.

urllib on its own opens file: and ftp: URLs and follows redirects to ftp:, so a service (or
whoever answers at a mistyped URL) could make Herald read a local file or reach an inside
address. The configured URL itself is checked when the integration is saved
(integrations.services, contacts.fetch.url_refusal); HERALD_IMPORT_ALLOW_PRIVATE_URLS lets a
development or test setup point at a local server.
"""

import urllib.error
import urllib.request

from contacts.fetch import url_refusal


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only where Herald may call (url_refusal): urllib's own handler
    would follow one to ftp: or to an inside address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        reason = url_refusal(newurl)
        if reason:
            raise urllib.error.URLError(f"refused to follow a redirect: {reason}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_CheckedRedirects)


def provider_urlopen(request: urllib.request.Request | str, *, timeout: float):
    """urllib.request.urlopen for a provider's configured URL: a URL that is not http(s) is
    refused before any connection, a redirect as _CheckedRedirects says. Refusals raise
    urllib.error.URLError, which every provider already handles as "cannot be reached"."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    if not url.lower().startswith(("http://", "https://")):
        raise urllib.error.URLError(f"{url!r} is not an http:// or https:// URL")
    return _OPENER.open(request, timeout=timeout)
