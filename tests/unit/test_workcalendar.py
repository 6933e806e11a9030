"""The working calendar's country check: fast at an API worker's first dashboard, and still strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analytics.workcalendar import check_country


def test_checking_a_country_loads_only_what_it_needs_and_knows_aliases():
    """The check ran holidays.list_supported_countries(), which imports every country's module: over a
    second at an API worker's first dashboard. Checked in a fresh interpreter, so no module is loaded yet."""
    code = ("import sys\nfrom analytics.workcalendar import check_country\n"
            "print(check_country(' kr '), check_country('kor'))\n"
            "print(sum(m.startswith('holidays.countries.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out[:2] == ["KR", "KOR"]
    assert int(out[2]) < 5  # of about 250
    assert check_country("uk") == "UK"  # an alias the registry does not list: the full list is asked
    with pytest.raises(ValueError, match="'XX' is not a country"):
        check_country("XX")


def test_preload_imports_the_country_data_a_first_dashboard_would_wait_for():
    code = ("import sys\nfrom analytics.workcalendar import preload\npreload()\n"
            "print(sum(m.startswith('holidays.countries.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert int(out) > 100
