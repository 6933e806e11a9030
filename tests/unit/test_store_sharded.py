"""ShardedStore: routing by tenant, merging machines(), and what one shard's failure does to the others."""

from __future__ import annotations

import logging

import pytest

from cli.config import ConfigError, load_config
from plant import MachineRef
from tsstore import Point, ShardedSettings, StoreRejected, StoreUnavailable, machines_of, open_store
from tsstore.sharded import ShardedStore, ShardedWrite
from tsstore.sqlite import SqliteStore

A = MachineRef("acme", "p", "l", "m1")
B = MachineRef("bravo", "p", "l", "m2")
C = MachineRef("charlie", "p", "l", "m3")
T0 = 1_795_000_020_000


class Failing:
    """A shard that fails every write (and reads nothing)."""

    def __init__(self, exc: Exception) -> None:
        self.exc, self.calls = exc, 0

    def write(self, points) -> None:
        self.calls += 1
        raise self.exc

    def machines(self):
        raise StoreUnavailable("down") if isinstance(self.exc, StoreUnavailable) else self.exc

    def ping(self) -> None:
        if isinstance(self.exc, StoreUnavailable):
            raise self.exc

    def close(self) -> None:
        pass


class Encoding(SqliteStore):
    """A SQLite shard that also encodes, as InfluxStore does, so the collector's encoded path is covered."""

    def encode(self, points):
        return ("encoded", list(points))

    def write_encoded(self, encoded) -> None:
        assert encoded[0] == "encoded"
        self.write(encoded[1])


@pytest.fixture
def two(tmp_path):
    main, other = SqliteStore(tmp_path / "main.db"), SqliteStore(tmp_path / "other.db")
    store = ShardedStore({"main": main, "other": other}, "main", {"bravo": "other"})
    yield store, main, other
    store.close()


def test_each_point_goes_to_its_tenants_shard_only(two):
    store, main, other = two
    store.write([Point(A, T0, {"x": 1}), Point(B, T0, {"x": 2}), Point(C, T0, {"x": 3})])
    assert main.machines() == [A, C] and other.machines() == [B]
    assert store.machines() == [A, B, C]
    assert store.latest(B)["x"].value == 2.0 and main.latest(B) == {}
    assert store.history(A, "x", T0, T0 + 1, 0) == [(T0, 1.0)]


def test_write_columns_and_reads_follow_the_tenant(two):
    store, main, other = two
    store.write_columns(B, {"x": ([T0, T0 + 1000], [1.0, 2.0])})
    assert other.history(B, "x", T0, T0 + 2000, 0) == [(T0, 1.0), (T0 + 1000, 2.0)]
    assert main.machines() == []
    assert store.counter_buckets(B, "x", T0 - T0 % 60_000, T0 + 60_000, 60_000)


def test_a_shard_holding_a_tenant_mapped_elsewhere_is_not_read_and_says_so_once(two, caplog):
    store, main, other = two
    main.write([Point(B, T0, {"x": 9})])  # left behind when bravo moved to "other"
    with caplog.at_level(logging.WARNING, logger="tsstore.sharded"):
        assert store.machines() == [] and store.machines() == []
    strays = [r for r in caplog.records if "store_shard_stray_tenant" in r.getMessage()]
    assert len(strays) == 1 and "tenant=bravo" in strays[0].getMessage()


def test_one_unavailable_shard_does_not_hold_back_the_others(tmp_path):
    good = SqliteStore(tmp_path / "good.db")
    bad = Failing(StoreUnavailable("connection refused"))
    store = ShardedStore({"good": good, "bad": bad}, "good", {"bravo": "bad"})
    with pytest.raises(StoreUnavailable, match="store shard 'bad'.*connection refused"):
        store.write([Point(B, T0, {"x": 1}), Point(A, T0, {"x": 2})])
    assert good.latest(A)["x"].value == 2.0  # written although the other shard failed first
    with pytest.raises(StoreUnavailable, match="'bad'"):
        store.ping()
    with pytest.raises(StoreUnavailable, match="'bad'"):
        store.machines()
    store.close()


def test_a_tenants_machines_are_listed_from_its_own_shard_while_another_is_down(tmp_path):
    good = SqliteStore(tmp_path / "good.db")
    store = ShardedStore({"good": good, "bad": Failing(StoreUnavailable("connection refused"))}, "good",
                         {"bravo": "bad"})
    store.write([Point(A, T0, {"x": 1}), Point(C, T0, {"x": 1})])
    assert machines_of(store, {"acme"}) == [A]
    assert machines_of(store, {"acme", "charlie"}) == [A, C]
    with pytest.raises(StoreUnavailable, match="store shard 'bad': down"):
        machines_of(store, {"bravo"})
    assert machines_of(good, {"charlie"}) == [C]  # a single store: listed, then filtered
    assert machines_of(good, None) == [A, C]
    store.close()


def test_the_portfolio_reports_a_down_shard_as_its_tenants_problem_only(tmp_path):
    from analytics.report import portfolio_reports
    from analytics.settings import AnalyticsSettings

    good = SqliteStore(tmp_path / "good.db")
    store = ShardedStore({"good": good, "bad": Failing(StoreUnavailable("connection refused"))}, "good",
                         {"bravo": "bad"})
    store.write([Point(A, T0 + i * 60_000, {"state": 1}) for i in range(3)])
    settings = AnalyticsSettings(rollouts=[{"tenant": "acme", "date": "2026-11-01"},
                                           {"tenant": "bravo", "date": "2026-11-01"}])
    reports, problems = portfolio_reports(store, settings, replicates=10)
    by_tenant = {p.split("/", 1)[0]: p for p in problems}
    assert "store shard 'bad'" in by_tenant["bravo"] and "down" in by_tenant["bravo"]
    # acme's machines were listed from its shard: whatever its report says, it is not about the store
    assert "acme" not in by_tenant or ("no machines" not in by_tenant["acme"] and "shard" not in by_tenant["acme"])
    store.close()


def test_unavailable_wins_over_rejected_and_a_rejection_names_its_shard(tmp_path):
    rejecting = Failing(StoreRejected("partial write: field type conflict"))
    down = Failing(StoreUnavailable("timeout"))
    store = ShardedStore({"main": SqliteStore(tmp_path / "m.db"), "r": rejecting, "d": down}, "main",
                         {"acme": "r", "bravo": "d"})
    with pytest.raises(StoreUnavailable):
        store.write([Point(A, T0, {"x": 1}), Point(B, T0, {"x": 1})])
    with pytest.raises(StoreRejected, match="store shard 'r'.*field type conflict"):
        store.write([Point(A, T0, {"x": 1}), Point(C, T0, {"x": 1})])
    store.close()


def test_encode_splits_by_shard_and_write_encoded_stores_like_write(tmp_path):
    enc, plain = Encoding(tmp_path / "enc.db"), SqliteStore(tmp_path / "plain.db")
    store = ShardedStore({"enc": enc, "plain": plain}, "plain", {"acme": "enc"})
    encoded = store.encode([Point(A, T0, {"x": 1}), Point(B, T0, {"x": 2})])
    assert isinstance(encoded, ShardedWrite) and {s for s, _ in encoded.parts} == {"enc", "plain"}
    store.write_encoded(encoded)
    assert enc.machines() == [A] and plain.machines() == [B]
    assert store.encode([]) is None
    store.close()


def test_a_mapping_to_an_unknown_shard_is_refused():
    with pytest.raises(ValueError, match="unknown shards"):
        ShardedStore({"a": object()}, "a", {"acme": "b"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="default shard 'b'"):
        ShardedStore({"a": object()}, "b")  # type: ignore[dict-item]


def test_open_store_builds_the_shards_with_paths_relative_to_the_config(tmp_path):
    settings = ShardedSettings.model_validate({"kind": "sharded", "default": "one", "tenants": {"bravo": "two"},
                                               "shards": {"one": {"kind": "sqlite", "path": "one.db"},
                                                          "two": {"kind": "sqlite", "path": "two.db"}}})
    store = open_store(settings, tmp_path)
    store.write([Point(A, T0, {"x": 1}), Point(B, T0, {"x": 2})])
    store.close()
    assert SqliteStore(tmp_path / "one.db").machines() == [A]
    assert SqliteStore(tmp_path / "two.db").machines() == [B]


@pytest.mark.parametrize("store, message", [
    ({"kind": "sharded", "default": "x", "shards": {"one": {"kind": "sqlite", "path": "a.db"}}},
     "store: default: 'x' is not a shard; the shards are: one"),
    ({"kind": "sharded", "default": "one", "tenants": {"acme": "two"}, "shards": {"one": {"kind": "sqlite"}}},
     "store: tenants.acme: 'two' is not a shard"),
    ({"kind": "sharded", "default": "one", "shards": {"one": {"kind": "sqlite", "path": "a.db"},
                                                       "two": {"kind": "sqlite", "path": "a.db"}}},
     "store: shards.two: the same store as shards.one"),
    ({"kind": "sharded", "default": "one", "shards": {"one": {"kind": "influxdb", "url": "nope"}}},
     "store.shards.one.url: Input should be a valid URL"),
    ({"kind": "sharded", "default": "one", "shards": {}}, "store.shards:"),
])
def test_config_errors_name_the_file_and_key(tmp_path, store, message):
    import yaml

    path = tmp_path / "smartfactory.yaml"
    path.write_text(yaml.safe_dump({"store": store}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)
