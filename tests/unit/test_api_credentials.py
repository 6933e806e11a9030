"""Credentials that can be taken back (issue #11 items 3, 7, 8, 12), through the API and the CLI.

Token expiry, listing and revocation; password changes and deactivation ending every session and
token; login throttling per address and per account shared through the plant database; the
password policy; the housekeeping of expired rows. Two apps on one database stand in for two
workers here; tests/integration/test_api_workers.py does the same with real uvicorn workers.
"""

from __future__ import annotations

import time

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.settings import ApiSettings
from cli.main import cli
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import ApiToken, LoginThrottle, User, WebSession, open_plant
from plantmodel.housekeeping import Retention, purge
from plantmodel.throttle import Throttle, ThrottlePolicy
from tests.waiting import wait_until
from tsstore.sqlite import SqliteStore

PASSWORD = "correct-horse-1"
NEW_PASSWORD = "lathe-morning-cactus-47"
SETTINGS = ApiSettings(login_free_failures_per_address=6, login_free_failures_per_account=3)
DAY_MS = 86_400_000


@pytest.fixture()
def plant(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme"}, {"slug": "bravo"}],
        "users": [{"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"},
                  {"username": "owner-b", "password": PASSWORD, "role": "sme_owner", "tenant": "bravo"},
                  {"username": "engineer", "password": PASSWORD, "role": "centre_engineer"},
                  {"username": "admin", "password": PASSWORD, "role": "centre_admin"}]}))
    yield plant
    plant.close()


@pytest.fixture()
def app(plant, tmp_path):
    store = SqliteStore(tmp_path / "store.db")
    yield create_app(store, SETTINGS, plant, run_alarms=False)
    store.close()


def _client(app, user: str | None = None, address: str = "127.0.0.11") -> TestClient:
    c = TestClient(app, client=(address, 40000))
    if user:
        r = c.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
    return c


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# -- tokens -------------------------------------------------------------------------------------------

def test_tokens_expire_by_default_and_cannot_outlive_the_maximum(app):
    c = _client(app, "owner-a")
    before = int(time.time() * 1000)
    r = c.post("/api/v1/me/tokens", json={"name": "nightly export"})
    assert r.status_code == 201
    assert before + 90 * DAY_MS <= r.json()["expires_ms"] <= int(time.time() * 1000) + 90 * DAY_MS
    r = c.post("/api/v1/me/tokens", json={"name": "short", "expires_in_days": 7})
    assert r.json()["expires_ms"] <= int(time.time() * 1000) + 7 * DAY_MS
    r = c.post("/api/v1/me/tokens", json={"name": "forever", "expires_in_days": 400})
    assert r.status_code == 422 and "at most 365 days" in r.json()["detail"][0]["msg"]


def test_an_expired_token_is_refused(app):
    c = _client(app, "owner-a")
    r = c.post("/api/v1/me/tokens", json={"name": "cron"}).json()
    with app.state.services.plant.session() as s, s.begin():
        s.get(ApiToken, r["id"]).expires_ms = int(time.time() * 1000) - 1
    assert TestClient(app).get("/api/v1/me", headers=_bearer(r["token"])).status_code == 401
    listed = c.get("/api/v1/me/tokens").json()
    assert [(t["name"], t["expired"]) for t in listed] == [("cron", True)]  # still listed: why the script stopped


def test_my_tokens_are_listed_without_secrets_and_revoked(app):
    c = _client(app, "owner-a")
    made = c.post("/api/v1/me/tokens", json={"name": "export", "expires_in_days": 30}).json()
    assert TestClient(app).get("/api/v1/me", headers=_bearer(made["token"])).json()["username"] == "owner-a"
    r = c.get("/api/v1/me/tokens")
    assert r.status_code == 200
    (row,) = r.json()
    assert row["id"] == made["id"] and row["name"] == "export" and row["expires_ms"] == made["expires_ms"]
    assert row["created_ms"] > 0 and row["last_used_ms"] is not None  # the request above used it
    with app.state.services.plant.session() as s:
        digest = s.get(ApiToken, made["id"]).token_hash
    assert made["token"] not in r.text and digest not in r.text and "token" not in row
    assert c.delete(f"/api/v1/me/tokens/{made['id']}").json()["revoked"] is True
    assert TestClient(app).get("/api/v1/me", headers=_bearer(made["token"])).status_code == 401
    assert c.get("/api/v1/me/tokens").json() == []
    assert c.delete(f"/api/v1/me/tokens/{made['id']}").status_code == 404


def test_nobody_revokes_another_users_token_but_a_centre_admin(app):
    b = _client(app, "owner-b")
    made = b.post("/api/v1/me/tokens", json={"name": "b script"}).json()
    a = _client(app, "owner-a")
    assert a.delete(f"/api/v1/me/tokens/{made['id']}").status_code == 404  # as if it did not exist
    engineer = _client(app, "engineer")
    assert engineer.get("/api/v1/users/owner-b/tokens").status_code == 403
    assert engineer.delete(f"/api/v1/users/owner-b/tokens/{made['id']}").status_code == 403
    admin = _client(app, "admin")
    assert [t["name"] for t in admin.get("/api/v1/users/owner-b/tokens").json()] == ["b script"]
    assert admin.delete(f"/api/v1/users/owner-a/tokens/{made['id']}").status_code == 404  # not owner-a's
    assert admin.delete(f"/api/v1/users/owner-b/tokens/{made['id']}").status_code == 200
    assert TestClient(app).get("/api/v1/me", headers=_bearer(made["token"])).status_code == 401
    assert admin.get("/api/v1/users/nobody/tokens").status_code == 404


# -- password change and deactivation ---------------------------------------------------------------

def test_a_password_change_ends_every_session_and_token_of_the_user(app):
    phone, laptop = _client(app, "owner-a"), _client(app, "owner-a")
    token = laptop.post("/api/v1/me/tokens", json={"name": "script"}).json()["token"]
    other = _client(app, "owner-b")
    r = phone.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 200 and r.json() == {"sessions_ended": 2, "tokens_ended": 1}
    assert laptop.get("/api/v1/me").status_code == 401
    assert TestClient(app).get("/api/v1/me", headers=_bearer(token)).status_code == 401
    assert phone.get("/api/v1/me").status_code == 200  # the browser that changed it got a new session
    assert other.get("/api/v1/me").status_code == 200  # other users are untouched
    assert _client(app).post("/api/v1/auth/login", json={"username": "owner-a", "password": NEW_PASSWORD}).status_code == 200
    assert _client(app).post("/api/v1/auth/login", json={"username": "owner-a", "password": PASSWORD}).status_code == 401


def test_a_password_change_needs_the_current_password_and_a_strong_new_one(app):
    c = _client(app, "owner-a")
    r = c.post("/api/v1/me/password", json={"current_password": "not-it-at-all", "new_password": NEW_PASSWORD})
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "current_password"]
    for weak, why in (("12345678", "common password"), ("password", "common password"), ("owner-a", "fewer than 8"),
                      ("acme-owner-a", "built from the username")):
        r = c.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": weak})
        assert r.status_code == 422, weak
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "new_password"] and why in err["msg"], (weak, err)
        assert err["ctx"]["fix"].startswith("choose a longer passphrase")
    r = c.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "owner-a"})
    assert c.get("/api/v1/me").status_code == 200  # nothing was changed or ended


def test_a_password_equal_to_the_username_is_refused(plant):
    from plantmodel.admin import add_user
    from plantmodel.credentials import WeakPassword
    from plantmodel.db import Role

    with plant.session() as s, pytest.raises(WeakPassword, match="the password is the username"):
        add_user(s, "kim-jihoon", "kim-jihoon", Role.SME_OWNER, "acme")


def test_deactivation_ends_sessions_and_tokens_and_refuses_logins_until_activated(app):
    owner = _client(app, "owner-a")
    token = owner.post("/api/v1/me/tokens", json={"name": "script"}).json()["token"]
    admin = _client(app, "admin")
    assert _client(app, "engineer").patch("/api/v1/users/owner-a", json={"active": False}).status_code == 403
    r = admin.patch("/api/v1/users/owner-a", json={"active": False})
    assert r.json() == {"username": "owner-a", "active": False, "sessions_ended": 1, "tokens_ended": 1}
    assert owner.get("/api/v1/me").status_code == 401
    assert TestClient(app).get("/api/v1/me", headers=_bearer(token)).status_code == 401
    login = {"username": "owner-a", "password": PASSWORD}
    assert _client(app).post("/api/v1/auth/login", json=login).status_code == 401
    assert admin.patch("/api/v1/users/owner-a", json={"active": True}).json() == {"username": "owner-a", "active": True}
    assert _client(app).post("/api/v1/auth/login", json=login).status_code == 200
    assert admin.patch("/api/v1/users/nobody", json={"active": False}).status_code == 404


def test_seeding_again_neither_reactivates_a_user_nor_ends_sessions(app, plant):
    """The demo seeds on every start: the same password changes nothing, and a deactivation holds."""
    owner = _client(app, "owner-b")
    seed = PlantSeed.model_validate({"tenants": [{"slug": "acme"}, {"slug": "bravo"}], "users": [
        {"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"},
        {"username": "owner-b", "password": PASSWORD, "role": "sme_owner", "tenant": "bravo"}]})
    _client(app, "admin").patch("/api/v1/users/owner-a", json={"active": False})
    apply_seed(plant, seed)
    assert owner.get("/api/v1/me").status_code == 200
    assert _login(_client(app), "owner-a", PASSWORD).status_code == 401


def test_centre_admin_creates_users_only_with_strong_passwords(app):
    admin = _client(app, "admin")
    body = {"username": "lee-sujin", "password": "password", "role": "sme_operator", "tenant": "acme"}
    r = admin.post("/api/v1/users", json=body)
    assert r.status_code == 422 and "common password" in r.json()["detail"][0]["msg"]
    assert admin.post("/api/v1/users", json={**body, "password": NEW_PASSWORD}).status_code == 201
    assert admin.post("/api/v1/users", json={**body, "password": NEW_PASSWORD}).status_code == 409
    assert _client(app).post("/api/v1/auth/login", json={"username": "lee-sujin", "password": NEW_PASSWORD}).status_code == 200
    assert admin.post("/api/v1/users", json={**body, "username": "x-2", "tenant": "nowhere"}).status_code == 422
    assert _client(app, "owner-a").post("/api/v1/users", json={**body, "username": "x-3"}).status_code == 403


def test_a_revocation_reaches_another_worker_within_its_cache_time(plant, tmp_path):
    """Two apps on one database are two workers: what one ends, the other refuses within credential_cache_s."""
    settings = ApiSettings(credential_cache_s=0.5)
    store = SqliteStore(tmp_path / "s2.db")
    one, two = create_app(store, settings, plant, run_alarms=False), create_app(store, settings, plant, run_alarms=False)
    c1 = _client(one, "owner-a")
    token = c1.post("/api/v1/me/tokens", json={"name": "t"}).json()["token"]
    c2 = TestClient(two, cookies=c1.cookies)
    assert c2.get("/api/v1/me").status_code == 200  # now cached by worker two
    assert TestClient(two).get("/api/v1/me", headers=_bearer(token)).status_code == 200
    admin = _client(one, "admin")
    admin.patch("/api/v1/users/owner-a", json={"active": False})
    wait_until(lambda: c2.get("/api/v1/me").status_code == 401, 10, "worker two to drop the session")
    wait_until(lambda: TestClient(two).get("/api/v1/me", headers=_bearer(token)).status_code == 401, 10,
               "worker two to drop the token")
    store.close()


# -- login throttling -------------------------------------------------------------------------------

def _login(c: TestClient, user: str, password: str):
    return c.post("/api/v1/auth/login", json={"username": user, "password": password})


def test_guesses_from_one_address_are_slowed_but_the_owner_logs_in_from_elsewhere(app):
    owner = _client(app, "owner-a", address="127.1.1.7")  # the owner's phone has logged in before
    owner.post("/api/v1/auth/logout")
    attacker = _client(app, address="127.113.0.9")
    codes = [_login(attacker, "owner-a", f"guess-{i}-xyz").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]  # three free failures per account here, then it must wait
    r = _login(attacker, "owner-a", PASSWORD)  # even the right password: the attacker may not test it now
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "try again in" in r.json()["detail"]
    assert _login(owner, "owner-a", PASSWORD).status_code == 200  # not locked out: a known device


def test_many_usernames_from_one_address_are_limited(app):
    sprayer = _client(app, address="127.51.100.4")
    users = ["owner-a", "owner-b", "engineer", "admin", "ghost-1", "ghost-2"]
    assert [_login(sprayer, u, "Summer2026!").status_code for u in users] == [401] * 6  # six free per address
    r = _login(sprayer, "ghost-3", "Summer2026!")
    assert r.status_code == 429 and "from this address" in r.json()["detail"]
    assert _login(_client(app, address="127.9.9.9"), "owner-b", PASSWORD).status_code == 200


def test_throttle_counts_are_shared_by_workers(plant, tmp_path):
    store = SqliteStore(tmp_path / "s3.db")
    workers = [create_app(store, SETTINGS, plant, run_alarms=False) for _ in range(2)]
    codes = [_login(_client(workers[i % 2], address="127.0.2.50"), "engineer", f"guess-{i}-abc").status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]  # per worker, each would have seen only two failures
    store.close()


def test_backoff_doubles_up_to_the_cap_and_is_forgotten(plant):
    throttle = Throttle(plant, ThrottlePolicy(free_per_address=100, free_per_account=2, base_s=1, max_s=10,
                                              forget_s=3600))
    t0 = 1_800_000_000_000
    waits = []
    now = t0
    for _ in range(7):
        wait, _ = throttle.wait_s("127.0.0.18", "owner-a", None, now)
        now += int(wait * 1000)  # a patient attacker waits exactly as long as told
        throttle.failed("127.0.0.18", "owner-a", None, now)
        waits.append(throttle.wait_s("127.0.0.18", "owner-a", None, now)[0])
    assert waits == [0, 1, 2, 4, 8, 10, 10]
    assert throttle.wait_s("127.0.0.18", "owner-a", None, now + 3_601_000)[0] == 0  # an hour later it starts afresh
    throttle.succeeded("owner-a")
    assert throttle.wait_s("127.0.0.18", "owner-a", None, now)[0] == 0


# -- housekeeping -----------------------------------------------------------------------------------

def test_purge_deletes_expired_sessions_old_tokens_and_throttle_rows(plant):
    now = int(time.time() * 1000)
    with plant.session() as s, s.begin():
        uid = s.scalar(select(User.id).filter_by(username="owner-a"))
        s.add_all([WebSession(token_hash="a" * 64, user_id=uid, expires_ms=now - 1),
                   WebSession(token_hash="b" * 64, user_id=uid, expires_ms=now + 3_600_000),
                   ApiToken(token_hash="c" * 64, user_id=uid, name="long gone", created_ms=0, expires_ms=now - 31 * DAY_MS),
                   ApiToken(token_hash="d" * 64, user_id=uid, name="just expired", created_ms=0, expires_ms=now - DAY_MS),
                   LoginThrottle(key="addr:old", failures=9, last_failure_ms=now - 7_200_000, blocked_until_ms=0),
                   LoginThrottle(key="addr:new", failures=9, last_failure_ms=now - 1000, blocked_until_ms=now)])
    assert purge(plant, Retention(token_grace_days=30, throttle_forget_s=3600), now) == {
        "sessions": 1, "tokens": 1, "throttle": 1, "devices": 0}
    with plant.session() as s:
        assert [w.token_hash[0] for w in s.scalars(select(WebSession))] == ["b"]
        assert [t.name for t in s.scalars(select(ApiToken))] == ["just expired"]
        assert [r.key for r in s.scalars(select(LoginThrottle))] == ["addr:new"]


def test_the_leader_purges_expired_sessions_and_a_login_purges_the_users_own(plant, tmp_path):
    store = SqliteStore(tmp_path / "s4.db")
    with plant.session() as s, s.begin():
        uid = s.scalar(select(User.id).filter_by(username="owner-a"))
        s.add(WebSession(token_hash="e" * 64, user_id=uid, expires_ms=1))
    app = create_app(store, ApiSettings(housekeeping_interval_s=0.2), plant, run_alarms=True)  # the leader's duties
    with TestClient(app):
        wait_until(lambda: app.state.services.housekeeper.passes >= 1, 20, "the housekeeper's first pass")
        with plant.session() as s:
            assert s.scalar(select(WebSession).filter_by(token_hash="e" * 64)) is None
    # a follower (no duties) still drops a user's expired sessions when that user logs in
    follower = create_app(store, SETTINGS, plant, run_alarms=False)
    with plant.session() as s, s.begin():
        s.add(WebSession(token_hash="f" * 64, user_id=uid, expires_ms=1))
    _client(follower, "owner-a")
    with plant.session() as s:
        assert s.scalar(select(WebSession).filter_by(token_hash="f" * 64)) is None
    store.close()


# -- CLI ----------------------------------------------------------------------------------------------

def test_cli_tokens_expiry_list_revoke_and_deactivate(tmp_path):
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"api": {"database_url": "sqlite:///plant.db", "token_default_days": 30, "token_max_days": 60}}))
    run = CliRunner().invoke
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump({"tenants": [{"slug": "acme"}]}))
    assert run(cli, ["plant", "seed", "-c", str(config), str(seed)]).exit_code == 0
    r = run(cli, ["plant", "user", "-c", str(config), "kim", "--role", "sme_owner", "--tenant", "acme",
                  "--password", "12345678"])
    assert r.exit_code == 2 and "common password" in r.output and "choose a longer passphrase" in r.output
    r = run(cli, ["plant", "user", "-c", str(config), "kim", "--role", "sme_owner", "--tenant", "acme",
                  "--password", "kim-password-1"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["plant", "token", "-c", str(config), "kim", "--name", "export", "--days", "90"])
    assert r.exit_code == 2 and "at most 60 days" in r.output
    r = run(cli, ["plant", "token", "-c", str(config), "kim", "--name", "export", "--days", "14"])
    assert r.exit_code == 0 and r.stdout.strip().startswith("sf_") and "expires" in r.stderr
    secret = r.stdout.strip()
    r = run(cli, ["plant", "tokens", "-c", str(config)])
    assert r.exit_code == 0 and "export" in r.output and "kim" in r.output and secret not in r.output
    token_id = r.output.splitlines()[1].split()[0]
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    app = create_app(SqliteStore(tmp_path / "store.db"), ApiSettings(), plant, run_alarms=False)
    assert TestClient(app).get("/api/v1/me", headers=_bearer(secret)).status_code == 200
    r = run(cli, ["plant", "revoke-token", "-c", str(config), token_id])
    assert r.exit_code == 0 and f"revoked token {token_id} (export) of kim" in r.output
    wait_until(lambda: TestClient(app).get("/api/v1/me", headers=_bearer(secret)).status_code == 401, 15,
               "the revoked token to be refused")
    c = _client(app)
    assert _login(c, "kim", "kim-password-1").status_code == 200
    r = run(cli, ["plant", "user", "-c", str(config), "kim", "--deactivate"])
    assert r.exit_code == 0 and "ended 1 sessions" in r.output
    wait_until(lambda: c.get("/api/v1/me").status_code == 401, 15, "the session of the deactivated user to end")
    assert _login(_client(app), "kim", "kim-password-1").status_code == 401
    assert run(cli, ["plant", "user", "-c", str(config), "kim", "--activate"]).exit_code == 0
    assert _login(_client(app), "kim", "kim-password-1").status_code == 200
    assert run(cli, ["plant", "revoke-token", "-c", str(config), "999"]).exit_code == 2
    assert run(cli, ["plant", "user", "-c", str(config), "kim"]).exit_code == 2  # neither --role nor a state


def test_the_seed_refuses_a_weak_password_and_says_whose(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="user kim: the password is too easy to guess"):
        PlantSeed.model_validate({"tenants": [{"slug": "acme"}], "users": [
            {"username": "kim", "password": "password1", "role": "sme_owner", "tenant": "acme"}]})


def test_the_demo_passwords_pass_the_policy():
    from cli.demo import DEMO_ENGINEER, DEMO_OTHER_OWNER, DEMO_OWNER
    from plantmodel.credentials import check_password

    for user, password in (DEMO_OWNER, DEMO_ENGINEER, DEMO_OTHER_OWNER):
        check_password(password, user)


def test_upgrade_to_0005_gives_tokens_from_before_an_expiry_on_sqlite(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from plantmodel.db import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0003")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, password_hash, role, active) VALUES ('kim', 'x', 'centre_engineer', 1)"))
        conn.execute(text("INSERT INTO api_tokens (token_hash, user_id, name, created_ms) VALUES ('abc', 1, 'old', 1)"))
    engine.dispose()
    before = int(time.time() * 1000)
    plant = open_plant(url)
    with plant.session() as s:
        token = s.scalars(select(ApiToken)).one()
        assert token.name == "old" and before + 90 * DAY_MS <= token.expires_ms <= int(time.time() * 1000) + 90 * DAY_MS
    plant.close()
