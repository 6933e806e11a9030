"""The caller's API tokens and password; for centre admins, users and their tokens.

A password change or a deactivation deletes every session and token of the user; other workers
stop accepting them within ``api.credential_cache_s`` (``api.access.PrincipalCache``). Token
secrets are shown once, at creation: only their digests are stored.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import select

from api import access, logins
from api.access import CurrentPrincipal, Principal, require
from api.services import PlantDep, ServicesDep, SettingsDep
from plantmodel import admin
from plantmodel.credentials import WeakPassword, verify_password
from plantmodel.db import Role, User

log = logging.getLogger(__name__)
TokenId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Username = Annotated[str, PathParam(max_length=64)]
CentreAdmin = Annotated[Principal, Depends(require(Role.CENTRE_ADMIN))]

router = APIRouter(prefix="/api/v1", tags=["identity"])


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, description="default api.token_default_days; at "
                                                                            "most api.token_max_days")


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class NewUser(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Role
    tenant: str | None = Field(default=None, max_length=64)
    language: Literal["ko", "en"] | None = None


class UserChange(BaseModel):
    active: bool


def _weak(exc: WeakPassword, field: str) -> HTTPException:
    """422 in FastAPI's own shape, with what is wrong and how to fix it apart for the UI."""
    return HTTPException(status_code=422, detail=[{"type": "password.weak", "loc": ["body", field], "msg": str(exc),
                                                   "ctx": {"problem": exc.problem, "fix": exc.fix}}])


def _ended(services, username: str, ended: tuple[int, int], why: str, by: str) -> dict:
    services.principals.forget_user(username)  # this worker at once; the others within the cache ttl
    log.warning("credentials_ended user=%s why=%s sessions=%d tokens=%d by=%s", username, why, ended[0], ended[1], by)
    return {"sessions_ended": ended[0], "tokens_ended": ended[1]}


@router.get("/me/tokens")
def my_tokens(principal: CurrentPrincipal, plant: PlantDep) -> list[dict]:
    """The caller's API tokens (never their secrets), newest first; expired ones stay listed for a grace period."""
    return admin.list_tokens(plant, principal.username)


@router.post("/me/tokens", status_code=201)
def new_token(body: TokenRequest, principal: CurrentPrincipal, plant: PlantDep, settings: SettingsDep) -> dict:
    """A token for scripts; its secret is in this answer only (the database keeps a digest)."""
    try:
        secret, out = admin.create_token_row(plant, principal.username, body.name, body.expires_in_days,
                                             settings.token_lifetime())
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=[{"type": "token.lifetime", "loc": ["body", "expires_in_days"],
                                                      "msg": str(exc)}]) from None
    log.info("token_created user=%s id=%s expires_ms=%s", principal.username, out["id"], out["expires_ms"])
    return {**out, "token": secret, "note": "shown once; send as 'Authorization: Bearer <token>'"}


@router.delete("/me/tokens/{token_id}")
def revoke_my_token(token_id: TokenId, principal: CurrentPrincipal, services: ServicesDep) -> dict:
    try:
        out = admin.revoke_token(services.plant, token_id, principal.username)
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None
    services.principals.forget_user(principal.username)
    log.info("token_revoked user=%s id=%s by=%s", principal.username, token_id, principal.username)
    return {**out, "revoked": True}


@router.post("/me/password")
def change_my_password(body: PasswordChange, request: Request, response: Response, principal: CurrentPrincipal,
                       services: ServicesDep) -> dict:
    """Change the own password: every session and token of the user ends (on every worker within seconds);
    a browser gets a new session at once. Wrong current password: 403, counted like a failed login."""
    throttle, plant, settings = services.login_throttle, services.plant, services.settings
    logins.check_throttle(request, throttle, principal.username)
    with plant.session() as s:
        user = s.scalars(select(User).filter_by(username=principal.username)).one()
        stored, user_id = user.password_hash, user.id
    if not verify_password(stored, body.current_password):
        throttle.failed(logins.client_address(request), principal.username, request.cookies.get(logins.DEVICE_COOKIE))
        raise HTTPException(status_code=403, detail=[{"type": "password.wrong", "loc": ["body", "current_password"],
                                                      "msg": "the current password is wrong: type the password "
                                                             "you logged in with"}])
    try:
        ended = admin.change_password(plant, principal.username, body.new_password)
    except WeakPassword as exc:
        raise _weak(exc, "new_password") from None
    out = _ended(services, principal.username, ended, "password_changed", principal.username)
    if request.cookies.get(access.SESSION_COOKIE):
        logins.start_session(response, plant, settings, user_id)
    return out


@router.post("/users", status_code=201)
def create_user(body: NewUser, admin_: CentreAdmin, plant: PlantDep) -> dict:
    """Create a user (centre admins); the password must pass the policy (422 says why not)."""
    with plant.session() as s, s.begin():
        if s.scalars(select(User).filter_by(username=body.username)).first() is not None:
            raise HTTPException(status_code=409, detail=f"user {body.username!r} exists: change it with "
                                                        f"PATCH /api/v1/users/{body.username}")
        try:
            admin.add_user(s, body.username, body.password, body.role, body.tenant, body.language)
        except WeakPassword as exc:
            raise _weak(exc, "password") from None
        except (LookupError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=[{"type": "user.invalid", "loc": ["body"], "msg": str(exc)}]) from None
    log.info("user_created user=%s role=%s tenant=%s by=%s", body.username, body.role.value, body.tenant,
             admin_.username)
    return {"username": body.username, "role": body.role.value, "tenant": body.tenant, "active": True}


@router.patch("/users/{username}")
def change_user(username: Username, body: UserChange, admin_: CentreAdmin, services: ServicesDep) -> dict:
    """Deactivate (``active: false``: every session and token ends) or reactivate a user (centre admins)."""
    try:
        ended = admin.set_active(services.plant, username, body.active)
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None
    out = {"username": username, "active": body.active}
    if not body.active:
        out |= _ended(services, username, ended, "deactivated", admin_.username)
    return out


@router.get("/users/{username}/tokens")
def user_tokens(username: Username, _a: CentreAdmin, plant: PlantDep) -> list[dict]:
    try:
        return admin.list_tokens(plant, username)
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None


@router.delete("/users/{username}/tokens/{token_id}")
def revoke_user_token(username: Username, token_id: TokenId, admin_: CentreAdmin, services: ServicesDep) -> dict:
    try:
        out = admin.revoke_token(services.plant, token_id, username)
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None
    services.principals.forget_user(username)
    log.info("token_revoked user=%s id=%s by=%s", username, token_id, admin_.username)
    return {**out, "revoked": True}
