"""The centre's per-tenant summaries on the embedded SQLite cache: what the maintainer keeps equals the overview
computed machine by machine, and a tenant without a summary (or with a too old one) is computed once in the request."""

from __future__ import annotations

from analytics.continuous import RollupMaintainer
from analytics.settings import AnalyticsSettings
from analytics.rollup import RollupCache
from api.centre import OVERVIEW_SUMMARY, CentreSummaries, overview
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore import Point
from tsstore.sqlite import SqliteStore

NOW = 1_780_000_000_000 + 1_234_567
STALE_MS = 90_000


def _setup(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": t, "sites": [{"slug": "s", "lines": [{"slug": "l", "machines": [
            {"slug": "m1", "gateway": f"gw-{t}"}, {"slug": "m2"}]}]}]} for t in ("acme", "bravo")],
        "broker_accounts": [{"username": f"gw-{t}", "password": "gateway-pass-1", "tenant": t} for t in ("acme", "bravo")]}))
    store = SqliteStore(tmp_path / "s.db")
    # acme: a sample a minute for 30 h up to a minute ago; bravo: only the first of its machines, 10 h, ending 2 h ago
    store.write([Point(MachineRef("acme", "s", "l", m), NOW - k * 60_000, {"state": 2}) for m in ("m1", "m2")
                 for k in range(1, 30 * 60)])
    store.write([Point(MachineRef("bravo", "s", "l", "m1"), NOW - k * 60_000, {"state": 2}) for k in range(120, 720)])
    return plant, store, RollupCache(tmp_path / "rollups.db")


def test_the_summaries_the_maintainer_keeps_equal_the_overview_computed_machine_by_machine(tmp_path):
    plant, store, cache = _setup(tmp_path)
    settings = AnalyticsSettings()
    summaries = CentreSummaries(plant, store, cache, lambda: settings, STALE_MS, max_age_s=600)
    result = RollupMaintainer(store, settings, cache, after_pass=summaries.refresh).run_pass(NOW)
    assert result.tenants == {"acme", "bravo"}
    want = overview(plant, store, cache, settings, NOW, STALE_MS)
    assert summaries.overview(NOW) == want and summaries.computed_in_request == 0  # read, not computed
    acme, bravo = want
    assert acme["gateways"][0]["online"] and not bravo["gateways"][0]["online"]  # the data differ: so do the rows
    assert acme["coverage_24h"] > bravo["coverage_24h"] > 0
    cache.close()
    store.close()


def test_a_tenant_without_a_summary_or_with_a_too_old_one_is_computed_once_in_the_request(tmp_path):
    plant, store, cache = _setup(tmp_path)
    settings = AnalyticsSettings()
    summaries = CentreSummaries(plant, store, cache, lambda: settings, STALE_MS, max_age_s=600)
    summaries.refresh({"acme"}, NOW)  # the maintainer has reached acme only
    got = summaries.overview(NOW)
    assert [r["tenant"] for r in got] == ["acme", "bravo"] and summaries.computed_in_request == 1
    assert got == overview(plant, store, cache, settings, NOW, STALE_MS)
    assert set(cache.summaries(OVERVIEW_SUMMARY)) == {"acme", "bravo"}  # written back: the next request reads it
    summaries.overview(NOW)
    assert summaries.computed_in_request == 1
    later = NOW + 601_000  # no maintainer since: both summaries are too old and computed again, as of now
    assert summaries.overview(later) == overview(plant, store, cache, settings, later, STALE_MS)
    assert summaries.computed_in_request == 3
    cache.close()
    store.close()


def test_a_failed_report_is_retried_by_a_request_once_the_status_has_expired(tmp_path):
    """While a history is still arriving the rollout's report fails; the maintainer refreshes only the tenants it
    tallies, so a request must retry the failed gains (after STATUS_TTL_S), not keep the failure for gains_ttl_s."""
    from api.centre import GAINS_SUMMARY, STATUS_TTL_S

    plant, store, cache = _setup(tmp_path)
    settings = AnalyticsSettings.model_validate({"rollouts": [{"tenant": "acme", "date": "2026-05-20"}]})
    summaries = CentreSummaries(plant, store, cache, lambda: settings, STALE_MS, gains_ttl_s=3600, max_age_s=600)
    summaries.refresh({"acme", "bravo"}, NOW)
    as_of, _, problems = summaries.gains(["acme", "bravo"], NOW)
    assert problems and problems[0].startswith("acme")  # 30 h of data: no before/after windows yet
    assert cache.summaries(GAINS_SUMMARY)["acme"][0] == NOW
    summaries.gains(["acme", "bravo"], NOW + 1_000)  # within the status TTL: the failure is kept
    assert cache.summaries(GAINS_SUMMARY)["acme"][0] == NOW
    later = NOW + int(STATUS_TTL_S * 1000) + 1_000
    summaries.gains(["acme", "bravo"], later)
    assert cache.summaries(GAINS_SUMMARY)["acme"][0] == later  # retried by the request
    assert cache.summaries(GAINS_SUMMARY)["bravo"][0] == NOW  # no rollout, nothing failed: kept
    cache.close()
    store.close()
