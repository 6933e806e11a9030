"""Browser security headers on every response (OWASP Secure Headers / HTTP Headers Cheat Sheet).

- ``Content-Security-Policy``: scripts, styles, images, fonts and connections only from
  this origin (``'self'``), no plugins, no ``<base>``, forms only to this origin, and framing
  only by our own pages (``frame-ancestors 'self'``, clickjacking). The dashboards have no
  inline script or style, so no ``'unsafe-inline'`` is needed; an injected ``<script>`` or
  ``onerror=`` cannot run. A response that sets its own policy keeps it (the HTML reports,
  which are all inline style and no script, set a stricter one).
- ``X-Frame-Options: SAMEORIGIN`` for browsers that predate ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``: a CSV or JSON answer is never run as script or HTML.
- ``Referrer-Policy: same-origin``: our URLs (tenant, line names) never leak to other sites;
  our own pages still send a Referer, the fallback of the CSRF check (``api.csrf``).
- ``Cross-Origin-Opener-Policy: same-origin``: another site's window cannot script ours.
- ``Strict-Transport-Security`` when ``api.secure_cookies`` says the API is served over HTTPS.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
#: For HTML reports: inline style only, nothing that runs, nothing fetched.
REPORT_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
HSTS = "max-age=31536000"


def headers(https: bool) -> list[tuple[str, str]]:
    out = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "SAMEORIGIN"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    return out + ([("strict-transport-security", HSTS)] if https else [])


class SecurityHeaders:
    """ASGI middleware adding ``headers(https)`` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.headers = headers(https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in out:
                        out[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
