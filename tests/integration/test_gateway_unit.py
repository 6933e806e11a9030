"""deploy/smartfactory-gateway.service: systemd parses it without a warning, and it says what the
shop-PC install promises (restart always, config in /etc, outbox in /var/lib, journal, SIGHUP
reload, its own user, hardening).

``systemd-analyze verify`` exits 0 on unknown keys and bad values (it only warns), so the test
fails on any warning naming the file. It needs the ExecStart binary to exist, so the copy it
checks points ExecStart at this test's own smartfactory; nothing else changes. Without
systemd-analyze the parse test skips (Debian: apt-get install systemd), and fails under CI=true.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "smartfactory-gateway.service"
INSTALLED = "/opt/smartfactory/venv/bin/smartfactory"


def verify(unit: Path) -> subprocess.CompletedProcess:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and systemd-analyze is missing (Debian: apt-get install systemd)")
        pytest.skip("systemd-analyze is missing (Debian: apt-get install systemd)")
    return subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)


def local_copy(tmp_path: Path, text: str) -> Path:
    """The unit with ExecStart pointed at an executable that exists here."""
    here = Path(sys.executable).with_name("smartfactory")
    target = here if here.exists() else Path(sys.executable)
    path = tmp_path / UNIT.name
    path.write_text(text.replace(INSTALLED, str(target)))
    return path


def warnings_about(done: subprocess.CompletedProcess, unit: Path) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]


def test_systemd_parses_the_unit_without_a_warning(tmp_path):
    unit = local_copy(tmp_path, UNIT.read_text())
    done = verify(unit)
    assert done.returncode == 0 and not warnings_about(done, unit), done.stdout + done.stderr


def test_the_parse_check_catches_a_misspelt_key_and_a_bad_value(tmp_path):
    text = UNIT.read_text().replace("Restart=always", "Restartt=always").replace("ProtectSystem=strict", "ProtectSystem=bogus")
    unit = local_copy(tmp_path, text)
    warned = warnings_about(verify(unit), unit)
    assert any("Restartt" in w for w in warned) and any("protect system" in w.lower() for w in warned), warned


def test_the_unit_says_what_the_shop_pc_install_promises():
    parser = configparser.ConfigParser(strict=False, interpolation=None, empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    s = parser["Service"]
    assert s["Restart"] == "always" and parser["Unit"]["StartLimitIntervalSec"] == "0"
    assert s["ExecStart"] == f"{INSTALLED} gateway run --config /etc/smartfactory/gateway.yaml"
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert s["StateDirectory"] == "smartfactory" and s["ReadWritePaths"] == "/var/lib/smartfactory"
    assert s["WorkingDirectory"] == "/var/lib/smartfactory"
    assert s["StandardOutput"] == s["StandardError"] == "journal"
    assert s["User"] == "smartfactory" and s["User"] != "root"
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes" and s["CapabilityBoundingSet"] == ""
    assert parser["Install"]["WantedBy"] == "multi-user.target"
