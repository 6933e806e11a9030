"""A login: throttled per client address and per account, then a web session and its cookie.

The login route (``api.routers.session``) and the password change (``api.routers.accounts``) use
it. The counts live in the plant database (``plantmodel.throttle``), so every worker shares them.
"""

from __future__ import annotations

import logging
import math
import os
import time

from fastapi import HTTPException, Request, Response
from sqlalchemy import select

from api import access
from api.access import Principal
from api.services import services_of
from api.settings import ApiSettings
from plantmodel.credentials import hash_password, new_secret, secret_digest, verify_password
from plantmodel.db import PlantDb, User, WebSession
from plantmodel.housekeeping import purge_user_sessions
from plantmodel.throttle import Throttle

log = logging.getLogger("api.logins")
DEVICE_COOKIE = "sf_device"
_DUMMY_HASH = hash_password("not-a-real-password")  # keeps unknown-user logins as slow as wrong passwords


def client_address(request: Request) -> str:
    """The caller's address; behind a reverse proxy uvicorn takes it from X-Forwarded-For (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


def _throttled(wait_s: float, why: str) -> HTTPException:
    seconds = max(1, math.ceil(wait_s))
    who = "from this address" if why == "address" else "for this account"
    return HTTPException(status_code=429, detail=f"too many failed logins {who}: try again in {seconds} s",
                         headers={"Retry-After": str(seconds)})


def check_throttle(request: Request, throttle: Throttle, username: str) -> None:
    wait_s, why = throttle.wait_s(client_address(request), username, request.cookies.get(DEVICE_COOKIE))
    if wait_s > 0:
        log.warning("login_throttled user=%r address=%s by=%s retry_after_s=%.0f", username,
                    client_address(request), why, wait_s)
        raise _throttled(wait_s, why)


def login(request: Request, response: Response, plant: PlantDb, settings: ApiSettings, username: str,
          password: str) -> Principal:
    """Check the password (unless throttled: 429), start a web session and set its cookie."""
    throttle = services_of(request.app).login_throttle
    check_throttle(request, throttle, username)
    device = request.cookies.get(DEVICE_COOKIE)
    with plant.session() as s:
        user = s.scalars(select(User).filter_by(username=username)).first()
        ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
        if not user or not ok or not user.active:
            throttle.failed(client_address(request), username, device)
            log.info("login_failed user=%r address=%s pid=%d", username, client_address(request), os.getpid())
            raise HTTPException(status_code=401, detail="wrong username or password")
        principal, user_id = access.principal_for_user(user), user.id
    throttle.succeeded(username)
    if not device:
        device = new_secret()
    throttle.remember_device(device, user_id)
    response.set_cookie(DEVICE_COOKIE, device, max_age=int(settings.retention().device_days * 86400),
                        httponly=True, samesite="strict", secure=settings.secure_cookies, path="/api/v1/auth")
    purge_user_sessions(plant, user_id, int(time.time() * 1000))
    start_session(response, plant, settings, user_id)
    log.info("login user=%s role=%s", principal.username, principal.role.value)
    return principal


def start_session(response: Response, plant: PlantDb, settings: ApiSettings, user_id: int) -> None:
    secret = new_secret()
    expires = int((time.time() + settings.session_hours * 3600) * 1000)
    with plant.session() as s, s.begin():
        s.add(WebSession(token_hash=secret_digest(secret), user_id=user_id, expires_ms=expires))
    response.set_cookie(access.SESSION_COOKIE, secret, max_age=int(settings.session_hours * 3600), httponly=True,
                        samesite="strict", secure=settings.secure_cookies, path="/")
