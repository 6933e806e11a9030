"""Several time-series stores behind one: each tenant's data lives in the store (shard) it maps to.

InfluxDB OSS does not cluster, and one embedded SQLite file serves one host, so the store
grows by adding instances: ``store.kind: sharded`` names the shards (each an InfluxDB or a
SQLite store), maps tenants to them and sends every other tenant to a default shard. This
class is a ``TimeSeriesStore`` like any other, so the collector, the API and analytics route
through it without knowing: a call about one machine goes to its tenant's shard; the one call
that spans tenants, ``machines()``, merges the shards' lists.

A tenant's data must live in its mapped shard: what a shard holds of a tenant mapped to
another one is not read (it is logged once), so moving a tenant means copying its history
first (docs/scaling.md).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from plant import MachineRef
from tsstore.base import LatestValue, Point, StoredValue, StoreRejected, StoreUnavailable, TimeSeriesStore, ValueCount

log = logging.getLogger("tsstore.sharded")


@dataclass(frozen=True, slots=True)
class ShardedWrite:
    """A batch split by shard, each part encoded by its shard when the shard can (``InfluxStore.encode``)."""

    parts: tuple[tuple[str, object], ...]  # (shard, encoded body or the points themselves)


class ShardedStore:
    def __init__(self, shards: Mapping[str, TimeSeriesStore], default: str, tenants: Mapping[str, str] | None = None,
                 describe: Mapping[str, str] | None = None) -> None:
        tenants = dict(tenants or {})
        if default not in shards:
            raise ValueError(f"default shard {default!r} is not one of the shards ({', '.join(shards)})")
        unknown = {t: s for t, s in tenants.items() if s not in shards}
        if unknown:
            raise ValueError(f"tenants mapped to unknown shards: {unknown} (shards: {', '.join(shards)})")
        self.shards, self.default, self.tenants = dict(shards), default, tenants
        self._describe = dict(describe or {})
        self._strays_logged: set[tuple[str, str]] = set()

    # -- routing ------------------------------------------------------------------------
    def shard_of(self, tenant: str) -> str:
        return self.tenants.get(tenant, self.default)

    def store_for(self, tenant: str) -> TimeSeriesStore:
        return self.shards[self.shard_of(tenant)]

    def _by_shard(self, points: Sequence[Point]) -> dict[str, list[Point]]:
        groups: dict[str, list[Point]] = {}
        for p in points:
            groups.setdefault(self.shard_of(p.machine.tenant), []).append(p)
        return groups

    def _name(self, shard: str) -> str:
        where = self._describe.get(shard)
        return f"store shard {shard!r}" + (f" ({where})" if where else "")

    # -- writing ------------------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> None:
        """Every shard's part is written even when another shard fails, so one shard's outage does not
        hold back the others' data; then the failure is raised (retrying re-writes, idempotently)."""
        self._write_parts([(shard, group) for shard, group in self._by_shard(points).items()])

    def encode(self, points: Sequence[Point]) -> ShardedWrite | None:
        """CPU only, like ``InfluxStore.encode``: shards that cannot encode get their points as they are."""
        parts = []
        for shard, group in self._by_shard(points).items():
            encode = getattr(self.shards[shard], "encode", None)
            body = encode(group) if encode is not None else group
            if body is not None:
                parts.append((shard, body))
        return ShardedWrite(tuple(parts)) if parts else None

    def write_encoded(self, encoded: ShardedWrite) -> None:
        self._write_parts(list(encoded.parts))

    def _write_parts(self, parts: list[tuple[str, object]]) -> None:
        unavailable: list[tuple[str, StoreUnavailable]] = []
        rejected: list[tuple[str, StoreRejected]] = []
        for shard, part in parts:
            store = self.shards[shard]
            try:
                if isinstance(part, list):
                    store.write(part)
                else:
                    store.write_encoded(part)  # type: ignore[attr-defined]
            except StoreUnavailable as exc:
                unavailable.append((shard, exc))
            except StoreRejected as exc:
                rejected.append((shard, exc))
        if unavailable:  # retry everything later; a rejection shows again then
            message = "; ".join(f"{self._name(s)}: {e}" for s, e in unavailable)
            err = StoreUnavailable(message)
            waits = [w for _, e in unavailable if (w := getattr(e, "retry_after_s", None)) is not None]
            err.retry_after_s = max(waits) if waits else None  # type: ignore[attr-defined]
            raise err from unavailable[0][1]
        if rejected:
            refused = StoreRejected("; ".join(f"{self._name(s)}: {e}" for s, e in rejected))
            dropped = [getattr(e, "dropped", None) for _, e in rejected]
            refused.dropped = sum(dropped) if None not in dropped else None  # type: ignore[attr-defined]
            raise refused from rejected[0][1]

    def write_columns(self, machine: MachineRef, columns: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> None:
        self.store_for(machine.tenant).write_columns(machine, columns)

    # -- reading ------------------------------------------------------------------------
    def machines(self) -> list[MachineRef]:
        """Every shard's machines of the tenants it serves, merged; raises if a shard cannot be read."""
        return self._machines(self.shards)

    def machines_of(self, tenants: Collection[str]) -> list[MachineRef]:
        """The machines of these tenants, from their shards only: an SME's own list does not fail
        because another tenant's shard is down."""
        wanted = set(tenants)
        shards = {s: self.shards[s] for s in dict.fromkeys(self.shard_of(t) for t in sorted(wanted))}
        return [m for m in self._machines(shards) if m.tenant in wanted]

    def _machines(self, shards: Mapping[str, TimeSeriesStore]) -> list[MachineRef]:
        out: set[MachineRef] = set()
        for shard, store in shards.items():
            try:
                listed = store.machines()
            except StoreUnavailable as exc:
                raise StoreUnavailable(f"{self._name(shard)}: {exc}") from exc
            for m in listed:
                if self.shard_of(m.tenant) == shard:
                    out.add(m)
                elif (shard, m.tenant) not in self._strays_logged:
                    self._strays_logged.add((shard, m.tenant))
                    log.warning("store_shard_stray_tenant shard=%s tenant=%s mapped_to=%s: this shard holds data of a "
                                "tenant mapped elsewhere; it is not read (copy it to its shard, see docs/scaling.md)",
                                shard, m.tenant, self.shard_of(m.tenant))
        return sorted(out)

    def latest(self, machine: MachineRef) -> dict[str, LatestValue]:
        return self.store_for(machine.tenant).latest(machine)

    def history(self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int,
                agg: str = "mean") -> list[tuple[int, StoredValue]]:
        return self.store_for(machine.tenant).history(machine, tag, start_ms, end_ms, every_ms, agg)

    def counter_buckets(self, machine: MachineRef, tag: str, start_ms: int, end_ms: int,
                        every_ms: int) -> list[tuple[int, float, float, float]]:
        return self.store_for(machine.tenant).counter_buckets(machine, tag, start_ms, end_ms, every_ms)

    def value_buckets(self, machine: MachineRef, tag: str, start_ms: int, end_ms: int,
                      every_ms: int) -> list[tuple[int, float, float, float]]:
        return self.store_for(machine.tenant).value_buckets(machine, tag, start_ms, end_ms, every_ms)

    def edge_samples(self, machine: MachineRef, tag: str, edges_ms: Sequence[int],
                     stale_ms: int) -> list[tuple[tuple[int, float] | None, int | None]]:
        return self.store_for(machine.tenant).edge_samples(machine, tag, edges_ms, stale_ms)

    def state_runs(self, machine: MachineRef, tag: str, start_ms: int, end_ms: int,
                   stale_ms: int) -> list[tuple[int, int, int]]:
        return self.store_for(machine.tenant).state_runs(machine, tag, start_ms, end_ms, stale_ms)

    def state_durations(self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int,
                        values: Sequence[float], stale_ms: int) -> list[ValueCount]:
        return self.store_for(machine.tenant).state_durations(machine, tag, start_ms, end_ms, every_ms, values,
                                                              stale_ms)

    def ping(self) -> None:
        """Every shard must answer: a store with one shard down is not healthy for that shard's tenants."""
        down = []
        for shard, store in self.shards.items():
            try:
                store.ping()
            except StoreUnavailable as exc:
                down.append(f"{self._name(shard)}: {exc}")
        if down:
            raise StoreUnavailable("; ".join(down))

    def close(self) -> None:
        for store in self.shards.values():
            store.close()
