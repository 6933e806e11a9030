"""The two tenants' gateways and one collector as broker accounts, seeded into a plant model on disk:
what the broker tests (mosquitto and the embedded broker) log in with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

CLI = [sys.executable, "-m", "cli.main"]
PW = {"gw-acme": "acme-gateway-pw", "gw-bravo": "bravo-gateway-pw", "collector-1": "collector-pw-1"}


def seed_accounts(tmp_path: Path) -> Path:
    """A config whose plant database holds tenants acme and bravo, their gateways and collector-1."""
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"api": {"database_url": "sqlite:///plant.db"}}))
    seed = tmp_path / "plant.yaml"
    seed.write_text(yaml.safe_dump({
        "tenants": [{"slug": "acme"}, {"slug": "bravo"}],
        "broker_accounts": [
            {"username": "gw-acme", "password": PW["gw-acme"], "tenant": "acme"},
            {"username": "gw-bravo", "password": PW["gw-bravo"], "tenant": "bravo"},
            {"username": "collector-1", "password": PW["collector-1"], "kind": "collector"},
        ],
    }))
    subprocess.run([*CLI, "plant", "seed", "-c", str(config), str(seed)], check=True, capture_output=True)
    return config
