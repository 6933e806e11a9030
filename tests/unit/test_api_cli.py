"""``smartfactory plant ...`` and ``broker-acl``: what an operator types, and the errors they get."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from plantmodel.credentials import mosquitto_verify, verify_password
from plantmodel.db import ApiToken, User, open_plant
from cli.main import cli


def _setup(tmp_path):
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"api": {"database_url": "sqlite:///data/plant.db"}}))
    seed = tmp_path / "centre.yaml"
    seed.write_text(yaml.safe_dump({"tenants": [{"slug": "acme"}],
                                    "broker_accounts": [{"username": "gw-1", "password": "gateway-pw-1",
                                                         "tenant": "acme"}]}))
    return config, seed


def test_seed_user_token_and_broker_files(tmp_path):
    config, seed = _setup(tmp_path)
    run = CliRunner().invoke
    r = run(cli, ["plant", "seed", "-c", str(config), str(seed)])
    assert r.exit_code == 0 and "seeded 1 tenants" in r.output
    r = run(cli, ["plant", "user", "-c", str(config), "kim", "--role", "sme_owner", "--tenant", "acme",
                  "--password", "kim-password-1"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["plant", "token", "-c", str(config), "kim", "--name", "export"])
    token = r.stdout.strip()  # only the token on stdout, so TOKEN=$(smartfactory plant token ...) works
    assert r.exit_code == 0 and token.startswith("sf_")
    plant = open_plant(f"sqlite:///{tmp_path / 'data' / 'plant.db'}")  # relative to the config file
    with plant.session() as s:
        user = s.query(User).filter_by(username="kim").one()
        assert user.role == "sme_owner" and verify_password(user.password_hash, "kim-password-1")
        assert s.query(ApiToken).count() == 1 and token not in {t.token_hash for t in s.query(ApiToken)}
    r = run(cli, ["broker-acl", "-c", str(config), "--password-file", str(tmp_path / "pw"), "--acl-file",
                  str(tmp_path / "acl")])
    assert r.exit_code == 0, r.output
    user, hashed = (tmp_path / "pw").read_text().strip().split(":", 1)
    assert user == "gw-1" and mosquitto_verify(hashed, "gateway-pw-1")
    assert "topic write sf/v1/acme/#" in (tmp_path / "acl").read_text()
    assert oct((tmp_path / "pw").stat().st_mode & 0o777) == "0o600"


def test_operator_errors_are_clear(tmp_path):
    config, seed = _setup(tmp_path)
    run = CliRunner().invoke
    r = run(cli, ["plant", "user", "-c", str(config), "kim", "--role", "sme_owner", "--tenant", "nobody",
                  "--password", "kim-password-1"])
    assert r.exit_code == 2 and "no tenant 'nobody'" in r.output
    r = run(cli, ["plant", "user", "-c", str(config), "lee", "--role", "centre_engineer", "--tenant", "acme",
                  "--password", "lee-password-1"])
    assert r.exit_code == 2 and "centre roles have no tenant" in r.output
    r = run(cli, ["plant", "token", "-c", str(config), "ghost"])
    assert r.exit_code == 2 and "no user 'ghost'" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"users": [{"username": "x", "password": "short", "role": "sme_owner"}]}))
    r = run(cli, ["plant", "seed", "-c", str(config), str(bad)])
    assert r.exit_code == 2 and "bad.yaml" in r.output and "password" in r.output


def test_broker_acl_warns_without_a_collector_and_broker_account_adds_one(tmp_path):
    """With anonymous access off a broker without a collector account locks the collector out: say so,
    and ``plant broker-account`` adds one that the next broker-acl writes, with the binding settings."""
    config, seed = _setup(tmp_path)
    run = CliRunner().invoke
    assert run(cli, ["plant", "seed", "-c", str(config), str(seed)]).exit_code == 0
    files = ["--password-file", str(tmp_path / "pw"), "--acl-file", str(tmp_path / "acl"),
             "--conf-file", str(tmp_path / "auth.conf")]
    r = run(cli, ["broker-acl", "-c", str(config), *files])
    assert r.exit_code == 0 and "no collector account" in r.stderr
    conf = (tmp_path / "auth.conf").read_text().splitlines()
    assert {"allow_anonymous false", "use_username_as_clientid true", f"password_file {tmp_path / 'pw'}",
            f"acl_file {tmp_path / 'acl'}"} <= set(conf)
    r = run(cli, ["plant", "broker-account", "-c", str(config), "collector-1", "--kind", "collector",
                  "--password", "collector-pw-1"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["broker-acl", "-c", str(config), *files])
    assert r.exit_code == 0 and "no collector account" not in r.stderr and "2 accounts" in r.stdout
    users = dict(line.split(":", 1) for line in (tmp_path / "pw").read_text().split())
    assert mosquitto_verify(users["collector-1"], "collector-pw-1")
    assert "user collector-1\ntopic read sf/v1/#" in (tmp_path / "acl").read_text()
    r = run(cli, ["plant", "broker-account", "-c", str(config), "gw-2", "--kind", "gateway", "--password", "gw-2-pw-12"])
    assert r.exit_code == 2 and "set 'tenant' on gateways only" in r.output


def test_machines_take_an_english_name_and_a_bad_one_is_refused_naming_file_and_key(tmp_path):
    """``name_en`` on a machine (as on tenants, sites and lines) reaches the plant tree the UI reads."""
    config, _ = _setup(tmp_path)
    run = CliRunner().invoke
    line = {"slug": "press-line-1", "name": "프레스 1라인", "name_en": "Press Line 1",
            "machines": [{"slug": "press-1", "name": "프레스 1호기", "name_en": "Press 1"}, {"slug": "press-2"}]}
    seed = tmp_path / "plant.yaml"
    seed.write_text(yaml.safe_dump({"tenants": [{"slug": "acme", "sites": [{"slug": "s1", "lines": [line]}]}]},
                                   allow_unicode=True), encoding="utf-8")
    r = run(cli, ["plant", "seed", "-c", str(config), str(seed)])
    assert r.exit_code == 0, r.output
    plant = open_plant(f"sqlite:///{tmp_path / 'data' / 'plant.db'}")
    from plantmodel.db import Machine

    from api.routers.plant import tenant_tree
    from plantmodel.db import Tenant

    with plant.session() as s:
        assert {m.slug: (m.name, m.name_en) for m in s.query(Machine)} == {"press-1": ("프레스 1호기", "Press 1"),
                                                                           "press-2": ("press-2", None)}
        tree = tenant_tree(s.query(Tenant).filter_by(slug="acme").one())
    shown = tree["sites"][0]["lines"][0]
    assert shown["name_en"] == "Press Line 1"
    assert [(m["name"], m["name_en"]) for m in shown["machines"]] == [("프레스 1호기", "Press 1"), ("press-2", None)]
    line["machines"][0]["name_en"] = "P" * 201
    bad = tmp_path / "too-long.yaml"
    bad.write_text(yaml.safe_dump({"tenants": [{"slug": "acme", "sites": [{"slug": "s1", "lines": [line]}]}]},
                                  allow_unicode=True), encoding="utf-8")
    r = run(cli, ["plant", "seed", "-c", str(config), str(bad)])
    assert r.exit_code == 2 and "too-long.yaml" in r.output
    assert "tenants.0.sites.0.lines.0.machines.0.name_en" in r.output and "at most 200 characters" in r.output
