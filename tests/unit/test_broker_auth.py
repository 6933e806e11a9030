"""The embedded broker's account and ACL rules (cli/brokerauth.py), the same as mosquitto's for the
files ``broker-acl`` writes. The broker process itself: tests/integration/test_embedded_broker.py."""

from __future__ import annotations

import pytest
from amqtt.contexts import Action

from cli.brokerauth import allowed, check_login, parse
from plantmodel.brokerfiles import render
from plantmodel.credentials import mosquitto_hash

FILES = render([("gw-acme", "gateway", "acme", mosquitto_hash("acme-pw-123")),
                ("collector-1", "collector", None, mosquitto_hash("coll-pw-123"))])
ACCOUNTS = parse(FILES.passwords, FILES.acl)


def test_login_needs_the_account_its_password_and_its_own_client_id():
    assert check_login(ACCOUNTS, "gw-acme", "acme-pw-123", "gw-acme")
    assert not check_login(ACCOUNTS, "gw-acme", "wrong-pw-12", "gw-acme")
    assert not check_login(ACCOUNTS, "gw-acme", "acme-pw-123", "collector-1")  # another client's id
    assert not check_login(ACCOUNTS, None, None, "anon")
    assert not check_login(ACCOUNTS, "ghost", "acme-pw-123", "ghost")


@pytest.mark.parametrize("user, topic, action, ok", [
    ("gw-acme", "sf/v1/acme/s/l/m/telemetry", Action.PUBLISH, True),
    ("gw-acme", "sf/v1/bravo/s/l/m/telemetry", Action.PUBLISH, False),
    ("gw-acme", "elsewhere", Action.PUBLISH, False),
    ("gw-acme", "sf/v1/acme/#", Action.SUBSCRIBE, False),  # gateways read nothing
    ("collector-1", "sf/v1/+/+/+/+/telemetry", Action.SUBSCRIBE, True),
    ("collector-1", "$share/g/sf/v1/+/+/+/+/telemetry", Action.SUBSCRIBE, True),
    ("collector-1", "#", Action.SUBSCRIBE, False),  # wider than its grant
    ("collector-1", "sf/v1/acme/s/l/m/telemetry", Action.RECEIVE, True),
    ("collector-1", "sf/v1/acme/s/l/m/telemetry", Action.PUBLISH, False),
    ("nobody", "sf/v1/acme/s/l/m/telemetry", Action.PUBLISH, False),
])
def test_topics_follow_the_acl_file(user, topic, action, ok):
    assert allowed(ACCOUNTS, user, topic, action) is ok


def test_a_file_broker_acl_did_not_write_is_refused_with_the_line():
    with pytest.raises(ValueError, match="line 1"):
        parse("gw-acme:plaintext\n", "")
    with pytest.raises(ValueError, match="acl file line 2"):
        parse("", "user a\npattern write x/%u\n")
