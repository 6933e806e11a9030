"""Accounts, client-id binding and topic ACLs for the embedded broker (amqtt), the same as mosquitto's.

The accounts are the ones ``smartfactory broker-acl`` writes for mosquitto: its password file
(``$7$`` PBKDF2-SHA512 hashes) and ACL file (``user NAME`` / ``topic read|write PATTERN``),
or the plant database they are generated from. The files are re-read when they change, so
``broker-acl`` takes effect without a restart; the plant database is read every
``RELOAD_S``.

- A client must log in with a known account and its password.
- Its client id must be its username (mosquitto's ``use_username_as_clientid`` replaces the
  id; amqtt cannot, so another id is refused): one credential cannot connect under another
  client's id. smartfactory's own clients connect with id = username (mqttlink).
- It may publish only where a ``write`` pattern allows, and subscribe to / receive only what
  a ``read`` pattern covers; anything not granted is denied, as in mosquitto.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from plantmodel.credentials import mosquitto_verify

log = logging.getLogger(__name__)

RELOAD_S = 10.0
_SHARE_PREFIX = "$share/"


@dataclass(frozen=True)
class Account:
    password_hash: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


def parse(passwords: str, acl: str, where: str = "broker files") -> dict[str, Account]:
    """Accounts from mosquitto's password-file and acl-file texts (the subset broker-acl writes)."""
    hashes: dict[str, str] = {}
    for n, line in enumerate(passwords.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith("$7$"):
            raise ValueError(f"{where}: password file line {n}: expected 'user:$7$...' (smartfactory broker-acl "
                             "writes it)")
        hashes[user] = hashed
    grants: dict[str, dict[str, list[str]]] = {}
    owner: str | None = None
    for n, line in enumerate(acl.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user" and len(words) == 2:
            owner = words[1]
            grants.setdefault(owner, {"read": [], "write": []})
        elif words[0] == "topic" and len(words) == 3 and words[1] in ("read", "write", "readwrite") and owner:
            for access in (("read", "write") if words[1] == "readwrite" else (words[1],)):
                grants[owner][access].append(words[2])
        else:
            raise ValueError(f"{where}: acl file line {n}: {line.strip()!r} is not 'user NAME' or "
                             "'topic read|write|readwrite PATTERN' after a user line")
    return {u: Account(h, tuple(grants.get(u, {}).get("read", ())), tuple(grants.get(u, {}).get("write", ())))
            for u, h in hashes.items()}


def _covers(pattern: str, topic: str) -> bool:
    """Does ACL ``pattern`` cover ``topic`` (a topic name, or a subscription filter level by level)?"""
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t):
            return False
        if t[i] == "#":  # the filter asks for more than a non-# pattern level grants
            return False
        if level != "+" and level != t[i]:  # also: a '+' in the filter needs a '+' in the pattern
            return False
    return len(p) == len(t)


class _Source:
    """The accounts of one set of files or one plant database, reloaded when they change."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _cache: ClassVar[dict[tuple, _Source]] = {}

    def __init__(self, password_file: str | None, acl_file: str | None, plant_url: str | None) -> None:
        self.password_file, self.acl_file, self.plant_url = password_file, acl_file, plant_url
        self.accounts: dict[str, Account] = {}
        self._stamp: object = None
        self._loaded_at = 0.0
        self.load(force=True)

    @classmethod
    def get(cls, password_file: str | None, acl_file: str | None, plant_url: str | None) -> _Source:
        key = (password_file, acl_file, plant_url)
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls(*key)
            return cls._cache[key]

    def load(self, force: bool = False) -> dict[str, Account]:
        try:
            if self.plant_url:
                if force or time.monotonic() - self._loaded_at >= RELOAD_S:
                    from plantmodel.brokerfiles import from_model
                    from plantmodel.db import PlantDb, redacted

                    plant = PlantDb(self.plant_url)
                    try:
                        files = from_model(plant)
                    finally:
                        plant.close()
                    self.accounts = parse(files.passwords, files.acl, redacted(self.plant_url))
                    self._loaded_at = time.monotonic()
            else:
                paths = [Path(self.password_file or ""), Path(self.acl_file or "")]
                stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
                if force or stamp != self._stamp:
                    self.accounts = parse(paths[0].read_text(encoding="utf-8"), paths[1].read_text(encoding="utf-8"),
                                          f"{paths[0]}, {paths[1]}")
                    self._stamp = stamp
                    log.info("broker_accounts loaded=%d from=%s", len(self.accounts), ", ".join(map(str, paths)))
        except Exception as exc:  # keep the last good accounts; the first load raises at start
            if force:
                raise
            log.error("broker_accounts_reload_failed error=%r (keeping the %d accounts loaded before)", str(exc),
                      len(self.accounts))
        return self.accounts


@dataclass
class AccountsConfig:
    """Where both plugins read the accounts: the files ``broker-acl`` writes, or the plant database."""

    password_file: str | None = None
    acl_file: str | None = None
    plant_url: str | None = None


def _source_of(config: AccountsConfig) -> _Source:
    return _Source.get(config.password_file, config.acl_file, config.plant_url)


class AccountAuthPlugin(BaseAuthPlugin):
    """Known account, right password, client id = username."""

    Config = AccountsConfig

    def __init__(self, context) -> None:
        super().__init__(context)
        self.source = _source_of(self.config)

    async def authenticate(self, *, session: Session) -> bool | None:
        return check_login(self.source.load(), session.username, session.password, session.client_id)


def check_login(accounts: dict[str, Account], username: str | None, password: str | None,
                client_id: str | None) -> bool:
    account = accounts.get(username or "")
    if account is None or password is None:
        log.warning("broker_login_refused username=%r client_id=%r reason=%s", username, client_id,
                    "no password" if account else "unknown account")
        return False
    if not mosquitto_verify(account.password_hash, password):
        log.warning("broker_login_refused username=%r client_id=%r reason=wrong password", username, client_id)
        return False
    if client_id != username:
        log.warning("broker_login_refused username=%r client_id=%r reason=the client id must be the username "
                    "(one id per account)", username, client_id)
        return False
    return True


class AccountTopicPlugin(BaseTopicPlugin):
    """Publish where a write pattern allows; subscribe to and receive what a read pattern covers."""

    Config = AccountsConfig

    def __init__(self, context) -> None:
        super().__init__(context)
        self.source = _source_of(self.config)

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        return allowed(self.source.load(), session.username if session else None, topic, action)


def allowed(accounts: dict[str, Account], username: str | None, topic: str | None, action: Action | None) -> bool:
    account = accounts.get(username or "")
    if account is None or not topic:
        return False
    if action == Action.PUBLISH:
        return any(_covers(p, topic) for p in account.write)
    if topic.startswith(_SHARE_PREFIX):  # $share/<group>/<filter>: the filter is what is read
        topic = topic.split("/", 2)[2] if topic.count("/") >= 2 else ""
    return any(_covers(p, topic) for p in account.read)
