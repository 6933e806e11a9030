"""InfluxDB backend over the v1 HTTP API (/write, /query, /ping).

InfluxDB 1.x serves this API natively and 2.x/3.x serve it for compatibility, so one
backend covers all three. Numbers are stored as float fields (see ``stored_value``).
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from plant import MachineRef
from tsstore.base import LatestValue, Point, StoredValue, StoreRejected, StoreUnavailable, ValueCount, fold_runs
from tsstore.lineprotocol import MEASUREMENT, _escape_key, quote_ident, quote_literal, to_lines

log = logging.getLogger(__name__)

_AGG_FUNCTIONS = {"mean": "mean", "min": "min", "max": "max", "last": "last", "count": "count"}
_DROPPED = re.compile(r"dropped=(\d+)")


class PartialWrite(StoreRejected):
    """InfluxDB kept the good lines of a write and dropped ``dropped`` bad ones (HTTP 400).

    The response does not say which lines were dropped; a caller that must know writes the
    batch again in halves (re-writing the good lines is idempotent): see
    ``collector.policy.isolate_rejects``.
    """

    def __init__(self, message: str, dropped: int | None) -> None:
        super().__init__(message)
        self.dropped = dropped


@dataclass(frozen=True, slots=True)
class EncodedWrite:
    """A gzipped line-protocol body and its number of lines."""

    body: bytes
    lines: int


class RetryLater(StoreUnavailable):
    """The server asked us to come back later (429/503), possibly saying when (Retry-After)."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class InfluxStore:
    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self.url = url.rstrip("/")
        self.database = database
        self._client = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, auth=auth)
        self._database_ready = False

    # -- writing -----------------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> None:
        encoded = self.encode(points)
        if encoded is not None:
            self.write_encoded(encoded)

    def encode(self, points: Sequence[Point]) -> EncodedWrite | None:
        """The request body of ``write(points)``, or None when there is nothing to send.

        CPU only, no I/O: the collector encodes the next batch while one is in flight.
        """
        lines = to_lines(points)
        if not lines:
            return None
        return EncodedWrite(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1), len(lines))

    def write_encoded(self, encoded: EncodedWrite) -> None:
        """Send a body from ``encode``; raises like ``write``."""
        if not self._database_ready:
            self.ensure_database()
        response = self._request(
            "POST",
            "/write",
            params={"db": self.database, "precision": "ms"},
            content=encoded.body,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
        )
        if response.status_code == 404 and "database not found" in response.text:
            self._database_ready = False
            raise StoreUnavailable(f"InfluxDB at {self.url}: database {self.database!r} vanished; will recreate")
        self._raise_for_write(response, encoded.lines)

    def write_columns(
        self, machine: MachineRef, columns: Mapping[str, tuple[Sequence[int], Sequence[float]]],
        batch_lines: int = 5000,
    ) -> None:
        """Bulk path for history backfill: per tag, parallel arrays of epoch ms and numbers.

        One field per line (InfluxDB merges the fields of a series at one timestamp), sent
        as gzip bodies of ``batch_lines`` lines; non-finite numbers are dropped.
        """
        prefix = (
            f"{MEASUREMENT},line={_escape_key(machine.line)},machine={_escape_key(machine.machine)},"
            f"site={_escape_key(machine.site)},tenant={_escape_key(machine.tenant)} "
        )
        lines: list[str] = []
        for tag, (ts, values) in columns.items():
            ts_list = ts.tolist() if hasattr(ts, "tolist") else list(ts)
            vals = values.tolist() if hasattr(values, "tolist") else list(values)
            if len(ts_list) != len(vals):
                raise StoreRejected(f"tag {tag!r}: {len(ts_list)} timestamps but {len(vals)} values")
            head = f"{prefix}{_escape_key(tag)}="
            lines.extend([f"{head}{float(v)!r} {t}" for t, v in zip(ts_list, vals) if math.isfinite(v)])
        if lines and not self._database_ready:
            self.ensure_database()
        for i in range(0, len(lines), batch_lines):
            chunk = lines[i : i + batch_lines]
            body = gzip.compress(("\n".join(chunk) + "\n").encode(), compresslevel=1)
            response = self._request(
                "POST", "/write", params={"db": self.database, "precision": "ms"}, content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
            )
            if response.status_code == 404 and "database not found" in response.text:
                self._database_ready = False
                raise StoreUnavailable(f"InfluxDB at {self.url}: database {self.database!r} vanished; will recreate")
            self._raise_for_write(response, len(chunk))

    def _raise_for_write(self, response: httpx.Response, line_count: int) -> None:
        code = response.status_code
        if code in (200, 204):
            return
        detail = response.text.strip()[:500]
        if code in (400, 413, 422):
            message = f"InfluxDB refused {line_count} lines (HTTP {code}): {detail}"
            if "partial write" in detail:
                found = _DROPPED.search(detail)
                raise PartialWrite(message, int(found.group(1)) if found else None)
            raise StoreRejected(message)
        if code in (429, 503):
            raise RetryLater(f"InfluxDB asked to retry later (HTTP {code}): {detail}",
                             parse_retry_after(response.headers.get("Retry-After")))
        raise StoreUnavailable(f"InfluxDB write failed (HTTP {code}): {detail}")

    def ensure_database(self) -> None:
        """CREATE DATABASE is idempotent and must be a POST (a GET /query is read-only)."""
        response = self._request("POST", "/query", data={"q": f"CREATE DATABASE {quote_ident(self.database)}"})
        if response.status_code != 200:
            raise StoreUnavailable(
                f"InfluxDB at {self.url} refused CREATE DATABASE {self.database!r} "
                f"(HTTP {response.status_code}): {response.text.strip()[:300]}"
            )
        self._database_ready = True

    # -- reading -----------------------------------------------------------------------
    def machines(self) -> list[MachineRef]:
        result = self._query(f"SHOW SERIES FROM {quote_ident(MEASUREMENT)}")
        found = set()
        for series in _series(result[0]):
            for (key,) in series.get("values", []):
                tags = _parse_series_key(key)
                try:
                    found.add(MachineRef(tags["tenant"], tags["site"], tags["line"], tags["machine"]))
                except (KeyError, ValueError):
                    log.warning("series_skipped key=%r reason=not-a-machine-series", key)
        return sorted(found)

    def latest(self, machine: MachineRef) -> dict[str, LatestValue]:
        """A snapshot as of the machine's newest point: that point's fields come from one row, so
        the tags of one poll are never mixed with the next poll's (separate ``last()`` statements
        in one request run one after another and a write can land between them); only a field
        that point lacks is read by its own ``last()``, bounded by the point's time."""
        fields = self._field_keys()
        if not fields:
            return {}
        where = _where_machine(machine)
        columns = ", ".join(quote_ident(f) for f in fields)
        (newest,) = self._query(
            f"SELECT {columns} FROM {quote_ident(MEASUREMENT)} WHERE {where} ORDER BY time DESC LIMIT 1")
        latest: dict[str, LatestValue] = {}
        newest_ms: int | None = None
        for series in _series(newest):
            names = series.get("columns", [])[1:]
            for ts, *values in series.get("values", [])[:1]:
                newest_ms = int(ts)
                for name, value in zip(names, values):
                    if value is not None:
                        latest[name] = LatestValue(newest_ms, _as_stored(value))
        if newest_ms is None:
            return {}
        missing = [f for f in fields if f not in latest]
        if not missing:
            return latest
        statements = [f"SELECT last({quote_ident(f)}) FROM {quote_ident(MEASUREMENT)} "
                      f"WHERE {where} AND time <= {newest_ms}ms" for f in missing]
        for name, result in zip(missing, self._query(";".join(statements))):
            for series in _series(result):
                for ts, value in series.get("values", []):
                    if value is not None:
                        latest[name] = LatestValue(int(ts), _as_stored(value))
        return latest

    def history(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int, agg: str = "mean"
    ) -> list[tuple[int, StoredValue]]:
        where = f"{_where_machine(machine)} AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms"
        if every_ms <= 0:
            q = f"SELECT {quote_ident(tag)} FROM {quote_ident(MEASUREMENT)} WHERE {where}"
        else:
            fn = _AGG_FUNCTIONS[agg]
            q = (
                f"SELECT {fn}({quote_ident(tag)}) FROM {quote_ident(MEASUREMENT)} WHERE {where} "
                f"GROUP BY time({int(every_ms)}ms) fill(none)"
            )
        (result,) = self._query(q)
        if "error" in result:
            raise StoreRejected(f"InfluxDB could not compute {agg} of {tag!r}: {result['error']}")
        return [
            (int(ts), _as_stored(v)) for series in _series(result) for ts, v in series.get("values", []) if v is not None
        ]

    def counter_buckets(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int
    ) -> list[tuple[int, float, float, float]]:
        """last, max and min as three selectors of one GROUP BY time() statement."""
        if every_ms <= 0:
            raise ValueError("counter_buckets needs a bucket size every_ms > 0")
        f = quote_ident(tag)
        where = f"{_where_machine(machine)} AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms"
        (result,) = self._query(f"SELECT last({f}), max({f}), min({f}) FROM {quote_ident(MEASUREMENT)} WHERE {where} "
                                f"GROUP BY time({int(every_ms)}ms) fill(none)")
        if "error" in result:
            raise StoreRejected(f"InfluxDB could not compute counter buckets of {tag!r}: {result['error']}")
        return [(int(ts), float(last), float(hi), float(lo)) for series in _series(result)
                for ts, last, hi, lo in series.get("values", [])
                if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (last, hi, lo))]

    def value_buckets(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int
    ) -> list[tuple[int, float, float, float]]:
        """mean, min and max as three aggregates of one GROUP BY time() statement."""
        if every_ms <= 0:
            raise ValueError("value_buckets needs a bucket size every_ms > 0")
        f = quote_ident(tag)
        where = f"{_where_machine(machine)} AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms"
        (result,) = self._query(f"SELECT mean({f}), min({f}), max({f}) FROM {quote_ident(MEASUREMENT)} WHERE {where} "
                                f"GROUP BY time({int(every_ms)}ms) fill(none)")
        if "error" in result:
            raise StoreRejected(f"InfluxDB could not compute mean, min and max of {tag!r}: {result['error']}")
        return [(int(ts), float(mean), float(lo), float(hi)) for series in _series(result)
                for ts, mean, lo, hi in series.get("values", [])
                if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (mean, lo, hi))]

    def state_durations(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int, values: Sequence[float],
        stale_ms: int,
    ) -> list[ValueCount]:
        """Three statements per value, one request. InfluxQL has no lag(), so the previous
        sample's value p comes from transformations: moving_average(f, 2) - difference(f) / 2;
        elapsed() is the hold of that previous sample. Buckets offset by +1 ms book a hold to
        the bucket it ends in, (a, a + every], as the SQLite backend does.
        """
        if every_ms <= 0:
            raise ValueError("state_durations needs a bucket size every_ms > 0")
        every, stale, f, m = int(every_ms), int(stale_ms), quote_ident(tag), quote_ident(MEASUREMENT)
        inner_where = f"{_where_machine(machine)} AND time >= {int(start_ms) - stale}ms AND time <= {int(end_ms)}ms"
        # InfluxDB narrows a subquery to the outer time range, which would cut off the predecessor
        # of the first sample; so the outer range is the inner one and early buckets are dropped below.
        held_span = f"time >= {int(start_ms) - stale}ms AND time <= {int(end_ms)}ms"
        run_span = f"time >= {int(start_ms) - stale}ms AND time < {int(end_ms)}ms"
        holds = f"SELECT moving_average({f}, 2) - difference({f}) / 2 AS p, elapsed({f}, 1ms) AS e FROM {m} WHERE {inner_where}"
        steps = f"SELECT moving_average({f}, 2) + difference({f}) / 2 AS s, difference({f}) AS d FROM {m} WHERE {inner_where}"
        statements = []
        for v in values:
            v = float(v)
            statements += [
                f"SELECT sum(e) FROM ({holds}) WHERE {held_span} AND p = {v!r} AND e <= {stale} "
                f"GROUP BY time({every}ms, 1ms) fill(none)",
                f"SELECT count(e) FROM ({holds}) WHERE {held_span} AND p = {v!r} AND e > {stale} "
                f"GROUP BY time({every}ms, 1ms) fill(none)",
                f"SELECT count(d) FROM ({steps}) WHERE {run_span} AND s = {v!r} AND d != 0 "
                f"GROUP BY time({every}ms) fill(none)",
            ]
        if not statements:
            return []
        results = self._query(";".join(statements))
        out: list[ValueCount] = []
        for i, v in enumerate(values):
            held: dict[int, int] = {}
            runs: dict[int, int] = {}
            for k, r in enumerate(results[3 * i : 3 * i + 3]):
                if "error" in r and "database not found" not in r["error"]:
                    raise StoreRejected(f"InfluxDB could not compute durations of {tag!r}: {r['error']}")
                for series in _series(r):
                    for ts, n in series.get("values", []):
                        if not n:
                            continue
                        if k == 2:
                            if int(ts) >= start_ms:
                                runs[int(ts)] = runs.get(int(ts), 0) + int(n)
                        else:
                            bucket = (int(ts) - 1) // every * every
                            if bucket + every > start_ms:
                                held[bucket] = held.get(bucket, 0) + int(n) * (1 if k == 0 else stale)
            for bucket in sorted(set(held) | set(runs)):
                out.append(ValueCount(bucket, float(v), held.get(bucket, 0), runs.get(bucket, 0)))
        out.sort(key=lambda c: (c.bucket_ms, c.value))
        return out

    def state_runs(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, stale_ms: int
    ) -> list[tuple[int, int, int]]:
        """The raw points, folded here: InfluxQL has no lag() to find where a run starts."""
        rows = [(ts, v) for ts, v in self.history(machine, tag, start_ms, end_ms, 0) if not isinstance(v, str)]
        return fold_runs([ts for ts, _ in rows], [v for _, v in rows], int(stale_ms))

    def edge_samples(
        self, machine: MachineRef, tag: str, edges_ms: Sequence[int], stale_ms: int
    ) -> list[tuple[tuple[int, float] | None, int | None]]:
        """last() and first() without GROUP BY time() return the point's own time; 200 edges a request."""
        f, m, where = quote_ident(tag), quote_ident(MEASUREMENT), _where_machine(machine)
        out: list[tuple[tuple[int, float] | None, int | None]] = []
        edges = [int(a) for a in edges_ms]
        for k in range(0, len(edges), 200):
            chunk = edges[k : k + 200]
            statements = []
            for a in chunk:
                statements += [f"SELECT last({f}) FROM {m} WHERE {where} AND time >= {a - stale_ms}ms AND time < {a}ms",
                               f"SELECT first({f}) FROM {m} WHERE {where} AND time >= {a}ms AND time <= {a + stale_ms}ms"]
            results = self._query(";".join(statements))
            for j in range(len(chunk)):
                found = []
                for r in results[2 * j : 2 * j + 2]:
                    if "error" in r and "database not found" not in r["error"]:
                        raise StoreRejected(f"InfluxDB could not read the samples around an edge of {tag!r}: {r['error']}")
                    rows = [row for series in _series(r) for row in series.get("values", [])
                            if isinstance(row[1], (int, float)) and not isinstance(row[1], bool)]
                    found.append(rows[0] if rows else None)
                last, first = found
                out.append(((int(last[0]), float(last[1])) if last else None, int(first[0]) if first else None))
        return out

    def ping(self) -> None:
        response = self._request("GET", "/ping")
        if response.status_code != 204:
            raise StoreUnavailable(f"InfluxDB at {self.url} answered /ping with HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()

    # -- plumbing ----------------------------------------------------------------------
    def _field_keys(self) -> list[str]:
        (result,) = self._query(f"SHOW FIELD KEYS FROM {quote_ident(MEASUREMENT)}")
        return [name for series in _series(result) for name, _type in series.get("values", [])]

    def _query(self, q: str) -> list[dict[str, Any]]:
        response = self._request("GET", "/query", params={"db": self.database, "q": q, "epoch": "ms"})
        if response.status_code == 404 or (response.status_code == 200 and "database not found" in response.text):
            return [{} for _ in q.split(";")]
        if response.status_code != 200:
            raise StoreUnavailable(f"InfluxDB query failed (HTTP {response.status_code}): {response.text[:300]}")
        results: list[dict[str, Any]] = response.json().get("results", [])
        return results

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} unreachable: {type(exc).__name__}: {exc}") from exc


def _series(result: dict[str, Any]) -> list[dict[str, Any]]:
    if "error" in result and "database not found" in result["error"]:
        return []
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def _where_machine(m: MachineRef) -> str:
    return " AND ".join(
        f"{quote_ident(k)} = {quote_literal(v)}"
        for k, v in (("tenant", m.tenant), ("site", m.site), ("line", m.line), ("machine", m.machine))
    )


def _parse_series_key(key: str) -> dict[str, str]:
    """'telemetry,line=l,machine=m,...' → tags. Our identifiers never need escaping."""
    _, _, rest = key.partition(",")
    return dict(pair.split("=", 1) for pair in rest.split(",") if "=" in pair)


def _as_stored(value: object) -> StoredValue:
    return value if isinstance(value, str) else float(value)  # type: ignore[arg-type]
