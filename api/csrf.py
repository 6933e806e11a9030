"""Cross-site request forgery: unsafe requests from another site's page are refused (403).

SameSite=Strict keeps the session cookie off requests from other *sites*, but a site is
scheme + registrable domain: a page on another port of the same host (or another
subdomain) is the same site, its form posts carry the cookie, and such a page imported
orders (issue #11). So, following OWASP's CSRF Prevention Cheat Sheet ("verifying origin
with standard headers", plus Fetch Metadata as defence in depth), every unsafe request
(POST, PUT, PATCH, DELETE) that is not authenticated by a Bearer token must come from this
site's own origin:

- ``Sec-Fetch-Site`` (sent by every current browser), when present, must be ``same-origin``
  (or ``none``: typed by the user);
- ``Origin``, when present, must be this site's origin (scheme, host and port of the
  request) or one listed in ``api.trusted_origins`` (e.g. the public address behind a
  reverse proxy that rewrites ``Host``); ``Origin: null`` is refused;
- without ``Origin``, the ``Referer`` must start with such an origin.

A request with none of the three headers is not from a browser page (curl, scripts, the
test client): browsers send ``Origin`` or ``Sec-Fetch-Site`` with every cross-origin POST,
so a forged request cannot lack all three. Bearer-token requests are not checked: a page
cannot make a browser add an ``Authorization`` header to another origin without a CORS
preflight, which this API never grants, and with a Bearer header the session cookie is not
used (``api.access.resolve``). Login is checked too (login CSRF).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("api.csrf")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL or an origin, default ports filled in; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def _text(o: tuple[str, str, int]) -> str:
    host = f"[{o[1]}]" if ":" in o[1] else o[1]
    return f"{o[0]}://{host}" + ("" if o[2] == _DEFAULT_PORTS[o[0]] else f":{o[2]}")


class OriginCheck:
    """ASGI middleware refusing cookie-borne unsafe requests whose Origin/Referer is not this site."""

    def __init__(self, app: ASGIApp, trusted_origins: list[str] | tuple[str, ...] = ()) -> None:
        self.app = app
        self.trusted = {o for o in (origin_of(t) for t in trusted_origins) if o is not None}

    def refusal(self, scope: Scope) -> str | None:
        """Why the request is refused, or None to let it through."""
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            return None
        headers = Headers(scope=scope)
        if headers.get("authorization", "").lower().startswith("bearer "):
            return None
        own = origin_of(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
        allowed = self.trusted | ({own} if own else set())
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return f"the browser marked it Sec-Fetch-Site: {fetch_site}"
        origin = headers.get("origin")
        if origin is not None:
            seen = origin_of(origin)
            return None if seen in allowed else f"it comes from Origin {origin}"
        referer = headers.get("referer")
        if referer is not None:
            seen = origin_of(referer)
            return None if seen in allowed else f"it comes from a page of {_text(seen) if seen else 'another site'}"
        return None  # no browser sent this: see the module docstring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        why = self.refusal(scope)
        if why is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        own = origin_of(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
        log.warning("csrf_refused method=%s path=%s origin=%r referer=%r fetch_site=%r", scope["method"],
                    scope["path"], headers.get("origin"), headers.get("referer"), headers.get("sec-fetch-site"))
        detail = (f"cross-site request refused: {why}, not this site ({_text(own) if own else 'unknown host'}). "
                  "Use the dashboard's own pages, send scripts' requests with an API token "
                  "('Authorization: Bearer <token>'), or, behind a reverse proxy, list the public address in "
                  "api.trusted_origins")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
