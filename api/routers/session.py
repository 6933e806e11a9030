"""Login, logout and who am I; API tokens and password changes are in ``api.routers.accounts``."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from api import access, logins
from api.access import ACKERS, SME_WRITERS, CurrentPrincipal, Principal
from api.services import ServicesDep
from plantmodel.credentials import secret_digest
from plantmodel.db import User, WebSession

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["identity"])


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class MeUpdate(BaseModel):
    language: Literal["ko", "en"]


def me_of(p: Principal) -> dict:
    """Who is logged in; ``permissions`` lets the UI show only what the API will allow."""
    permissions = [name for name, roles in (("alarm_rules:write", SME_WRITERS), ("alarms:ack", ACKERS),
                                            ("orders:write", SME_WRITERS)) if p.role in roles]
    return {"username": p.username, "role": p.role.value, "tenant": p.tenant, "language": p.language,
            "permissions": permissions}


@router.post("/auth/login", **access.public())
def login(body: Login, request: Request, response: Response, services: ServicesDep) -> dict:
    """Start a web session. Failed logins slow further ones down per address and per account (429)."""
    return me_of(logins.login(request, response, services.plant, services.settings, body.username, body.password))


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
