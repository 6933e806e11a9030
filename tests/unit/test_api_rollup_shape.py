"""The API's rollup maintainer keeps rows in the shape reports read.

Reports use the analytics settings completed from the plant model (a machine's ideal cycle
time is part of a cached row's shape); a maintainer given the config's settings alone kept
rows no report read, so every report started cold (found by tests/integration/test_scale_out.py).
"""

from __future__ import annotations

import yaml

import analytics.command
from analytics.rollup import RollupCache
from cli.apiserver import build_app
from cli.config import load_config
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from plantmodel.policy import effective_settings


def test_the_api_maintainer_tallies_in_the_shape_reports_read(tmp_path, monkeypatch):
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": "store.db"},
                                      "api": {"database_url": "sqlite:///plant.db"}}))
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "sites": [{"slug": "p1", "lines": [
        {"slug": "l1", "machines": [{"slug": "press-1", "ideal_cycle_s": 42.0}]}]}]}]}))
    made = []
    real = analytics.command.maintainer_for

    def capture(store, settings, cache, **kwargs):
        made.append(settings)
        return real(store, settings, cache, **kwargs)

    # build_app imports maintainer_for when it runs, so the patch holds whatever imported analytics first
    monkeypatch.setattr(analytics.command, "maintainer_for", capture)
    loaded = load_config(config)
    build_app(loaded, plant)
    (maintained,) = made
    reports = effective_settings(loaded.settings.analytics, plant)
    assert RollupCache.shape(reports.policy("acme")) != RollupCache.shape(loaded.settings.analytics.policy("acme"))
    assert RollupCache.shape(maintained.policy("acme")) == RollupCache.shape(reports.policy("acme"))
    plant.close()
