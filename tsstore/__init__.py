"""The time-series store interface, its two backends (InfluxDB v1 API, embedded SQLite) and sharding.

The collector writes through it, the API and analytics read through it; neither knows
which backend is behind ``open_store``.
"""

from tsstore.base import (
    AGGREGATES,
    LatestValue,
    Point,
    StoreError,
    StoreRejected,
    StoreUnavailable,
    TimeSeriesStore,
    ValueCount,
    machines_of,
)
from tsstore.settings import InfluxSettings, ShardedSettings, SqliteSettings, StoreSettings, open_store

__all__ = [
    "AGGREGATES",
    "InfluxSettings",
    "LatestValue",
    "Point",
    "ShardedSettings",
    "SqliteSettings",
    "StoreError",
    "StoreRejected",
    "StoreSettings",
    "StoreUnavailable",
    "TimeSeriesStore",
    "ValueCount",
    "machines_of",
    "open_store",
]
