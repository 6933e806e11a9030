"""Login, logout, who am I, and API tokens."""

from __future__ import annotations

import logging
import time
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from api import access
from api.access import ACKERS, SME_WRITERS, CurrentPrincipal, Principal
from api.services import PlantDep, ServicesDep
from plantmodel.credentials import hash_password, new_secret, secret_digest, verify_password
from plantmodel.db import ApiToken, User, WebSession

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["identity"])
_DUMMY_HASH = hash_password("not-a-real-password")  # keeps unknown-user logins as slow as wrong passwords


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class MeUpdate(BaseModel):
    language: Literal["ko", "en"]


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)


def me_of(p: Principal) -> dict:
    """Who is logged in; ``permissions`` lets the UI show only what the API will allow."""
    permissions = [name for name, roles in (("alarm_rules:write", SME_WRITERS), ("alarms:ack", ACKERS),
                                            ("orders:write", SME_WRITERS)) if p.role in roles]
    return {"username": p.username, "role": p.role.value, "tenant": p.tenant, "language": p.language,
            "permissions": permissions}


@router.post("/auth/login", **access.public())
def login(body: Login, response: Response, services: ServicesDep) -> dict:
    throttle, settings = services.login_throttle, services.settings
    wait_s = throttle.blocked_for(body.username)
    if wait_s > 0:
        log.warning("login_throttled user=%r retry_after_s=%.0f", body.username, wait_s)
        raise HTTPException(status_code=429, detail=f"too many failed logins for this user: try again in "
                                                    f"{wait_s:.0f} s", headers={"Retry-After": f"{wait_s:.0f}"})
    with services.plant.session() as s, s.begin():
        user = s.scalars(select(User).filter_by(username=body.username)).first()
        ok = verify_password(user.password_hash if user else _DUMMY_HASH, body.password)
        if not user or not ok or not user.active:
            throttle.failed(body.username)
            log.info("login_failed user=%r", body.username)
            raise HTTPException(status_code=401, detail="wrong username or password")
        throttle.succeeded(body.username)
        secret = new_secret()
        expires = int((time.time() + settings.session_hours * 3600) * 1000)
        s.add(WebSession(token_hash=secret_digest(secret), user_id=user.id, expires_ms=expires))
        principal = access.principal_for_user(user)
    response.set_cookie(access.SESSION_COOKIE, secret, max_age=int(settings.session_hours * 3600), httponly=True,
                        samesite="strict", secure=settings.secure_cookies, path="/")
    log.info("login user=%s role=%s", principal.username, principal.role.value)
    return me_of(principal)


@router.post("/auth/logout")
def logout(request: Request, response: Response, services: ServicesDep) -> dict:
    cookie = request.cookies.get(access.SESSION_COOKIE)
    services.principals.forget(cookie)
    if cookie:
        with services.plant.session() as s, s.begin():
            for row in s.scalars(select(WebSession).filter_by(token_hash=secret_digest(cookie))):
                s.delete(row)
    response.delete_cookie(access.SESSION_COOKIE, path="/")
    return {"status": "logged out"}


@router.get("/me")
async def me(principal: CurrentPrincipal) -> dict:
    return me_of(principal)


@router.patch("/me")
def update_me(body: MeUpdate, request: Request, principal: CurrentPrincipal, services: ServicesDep) -> dict:
    services.principals.forget(request.cookies.get(access.SESSION_COOKIE))
    with services.plant.session() as s, s.begin():
        user = s.scalars(select(User).filter_by(username=principal.username)).one()
        user.language = body.language
    return {**me_of(principal), "language": body.language}


@router.post("/me/tokens", status_code=201)
def new_token(body: TokenRequest, principal: CurrentPrincipal, plant: PlantDep) -> dict:
    secret = new_secret()
    with plant.session() as s, s.begin():
        user = s.scalars(select(User).filter_by(username=principal.username)).one()
        s.add(ApiToken(token_hash=secret_digest(secret), user_id=user.id, name=body.name,
                       created_ms=int(time.time() * 1000)))
    return {"name": body.name, "token": secret, "note": "shown once; send as 'Authorization: Bearer <token>'"}
