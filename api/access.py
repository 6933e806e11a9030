"""Who is calling, and what they may see: every request passes through ``authorise``.

The app installs ``authorise`` as an app-wide dependency, so it runs for every route,
including routers mounted later (reports, exports). It

- lets through only routes marked public (login, health, the static page shell);
- resolves the caller from the session cookie or a ``Bearer`` API token (401 otherwise);
- resolves the tenants the caller may see, and answers 404 for any ``tenant`` in the path
  or query that is not among them — the same answer as for a tenant that does not exist,
  so an SME cannot even learn another SME's name.

That is the one place tenant isolation is enforced; list endpoints filter with
``Principal.sees``. Role checks for writes use ``require``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from sqlalchemy import select, update

from api.caches import Flights, Revision, SharedCache
from plantmodel.credentials import TOKEN_PREFIX, secret_digest
from plantmodel.db import ApiToken, PlantDb, Role, User, WebSession

SESSION_COOKIE = "sf_session"
PUBLIC = "x-sf-public"


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    tenant: str | None  # own tenant of SME roles
    language: str
    visible: frozenset[str] | None  # None: every tenant (centre roles)

    def sees(self, tenant: str) -> bool:
        return self.visible is None or tenant in self.visible


def public(route_kwargs: dict | None = None) -> dict:
    """``@app.get(path, **public())`` marks a route as reachable without logging in."""
    return {"openapi_extra": {PUBLIC: True}, **(route_kwargs or {})}


def _is_public(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and bool((route.openapi_extra or {}).get(PUBLIC))


def principal_for_user(user: User) -> Principal:
    role = Role(user.role)
    own = user.tenant.slug if user.tenant else None
    language = user.language or ("en" if role.is_centre else "ko")
    return Principal(user.username, role, own, language, None if role.is_centre else frozenset({own}))


LAST_USED_EVERY_MS = 60_000  # a token's last use is written at most once a minute, not on every request


def resolve(plant: PlantDb, cookie: str | None, authorization: str | None) -> Principal | None:
    """The caller of a live session or an unexpired token of an active user; None otherwise."""
    secret = None
    from_cookie = False
    if authorization and authorization.lower().startswith("bearer "):
        secret = authorization[7:].strip()
    elif cookie:
        secret, from_cookie = cookie, True
    if not secret or not secret.startswith(TOKEN_PREFIX):
        return None
    digest = secret_digest(secret)
    now_ms = int(time.time() * 1000)
    with plant.session() as s:
        if from_cookie:
            row = s.scalars(select(WebSession).filter_by(token_hash=digest)).first()
            if row is None or row.expires_ms <= now_ms:
                return None
        else:
            row = s.scalars(select(ApiToken).filter_by(token_hash=digest)).first()
            if row is None or row.expires_ms <= now_ms:
                return None
        user = row.user
        if not user.active:
            return None
        principal = principal_for_user(user)
    if not from_cookie and (row.last_used_ms is None or now_ms - row.last_used_ms > LAST_USED_EVERY_MS):
        with plant.session() as s, s.begin():
            s.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_ms=now_ms))
    return principal


class PrincipalCache:
    """Resolved callers for a few seconds, so a dashboard's requests do not each query the user tables.

    Every worker has its own cache and learns of nothing another worker does, so ``ttl_s`` bounds
    how long a logout, a revoked or expired token, a password change or a deactivation can go
    unnoticed on any worker (``api.credential_cache_s``, 5 s). The worker that makes the change
    drops the entries at once (``forget``, ``forget_user``).

    ``lookup`` (every request, on the event loop) looks a caller up again in the background once
    its entry is ``REFRESH_AT`` of ``ttl_s`` old, while the entry, still within ``ttl_s``, is
    served: an active caller's entry is renewed before it expires, and no request waits for it.
    A caller without an entry is looked up once however many of its requests arrive meanwhile:
    when an entry expired under load, every request of that caller until one lookup had finished
    queried the database in a thread of its own (a herd every ``ttl_s``, most of the p99; bench/api.py).
    """

    #: the share of ``ttl_s`` after which an entry in use is looked up again, in the background
    REFRESH_AT = 0.6

    def __init__(self, ttl_s: float = 5.0, maxsize: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._entries: SharedCache[tuple[str | None, str | None], tuple[float, Principal]] = SharedCache(maxsize, ttl_s)
        self._flights: Flights[tuple[str | None, str | None], Principal | None] = Flights()
        self._forgotten = Revision()  # bumped by every forget: a lookup that ran across one is not kept

    def peek(self, cookie: str | None, authorization: str | None) -> Principal | None:
        """A fresh cached caller, without touching the database (safe on the event loop)."""
        hit = self._entries.get((cookie, authorization))
        return hit[1] if hit else None

    def get(self, plant: PlantDb, cookie: str | None, authorization: str | None) -> Principal | None:
        hit = self.peek(cookie, authorization)
        return hit if hit is not None else self._resolve(plant, cookie, authorization)

    def _resolve(self, plant: PlantDb, cookie: str | None, authorization: str | None) -> Principal | None:
        key = (cookie, authorization)
        born = time.monotonic()  # before the query: the entry is never younger than what it was read from
        forgotten = self._forgotten.value
        principal = resolve(plant, cookie, authorization)
        if principal is None:
            self._entries.pop(key)
        elif self._forgotten.value == forgotten:  # no logout meanwhile, which the query may not have seen
            self._entries.put(key, (born, principal))
        return principal

    async def lookup(self, plant: PlantDb, cookie: str | None, authorization: str | None) -> Principal | None:
        """The caller, for a request on the event loop (see the class)."""
        key = (cookie, authorization)
        hit = self._entries.get(key)
        if hit is not None:
            if time.monotonic() - hit[0] >= self.REFRESH_AT * self.ttl_s:
                self._flights.start_quietly(key, lambda: self._resolve(plant, cookie, authorization))
            return hit[1]
        return await self._flights.run(key, lambda: self._resolve(plant, cookie, authorization))

    def forget(self, cookie: str | None) -> None:
        self._forgotten.bump()
        self._entries.drop_where(lambda key: key[0] == cookie)

    def forget_user(self, username: str) -> None:
        self._forgotten.bump()
        self._entries.drop_items_where(lambda _key, entry: entry[1].username == username)


async def authorise(request: Request) -> None:
    if _is_public(request):
        return
    from api.services import services_of  # api.services builds on this module

    services = services_of(request.app)
    plant, cache = services.plant, services.principals
    cookie, authorization = request.cookies.get(SESSION_COOKIE), request.headers.get("authorization")
    # the common case, a caller seen within seconds, needs no thread hop; a miss queries the database once
    principal = await cache.lookup(plant, cookie, authorization)
    if principal is None:
        raise HTTPException(status_code=401, detail="log in first (POST /api/v1/auth/login) or send "
                                                    "'Authorization: Bearer <API token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    for tenant in (request.path_params.get("tenant"), *request.query_params.getlist("tenant")):
        if tenant is not None and not principal.sees(tenant):
            raise HTTPException(status_code=404, detail="not found")


async def current_principal(request: Request) -> Principal:  # async: trivial, no thread hop
    return request.state.principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role):
    """A dependency that answers 403 unless the caller has one of the roles."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status_code=403, detail=f"this needs one of the roles: {', '.join(r.value for r in roles)}")
        return principal

    return check


# Who may change an SME's configuration (alarm rules, orders). Centre engineers may: they set up the
# SMEs' systems during the rollout. If a centre's policy says read-only, drop them here; the UI follows /me.
SME_WRITERS = (Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER, Role.SME_OWNER)
ACKERS = (Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER, Role.SME_OWNER, Role.SME_OPERATOR)
Acker = Annotated[Principal, Depends(require(*ACKERS))]
SmeWriter = Annotated[Principal, Depends(require(*SME_WRITERS))]
CentreOnly = Annotated[Principal, Depends(require(Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER))]
