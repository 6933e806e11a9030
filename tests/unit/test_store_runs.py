"""``tsstore.fold_runs`` folds samples into runs by the same rule as ``analytics.live.add_sample``.

The live dashboard reads a day of state samples as runs from the store (``state_runs``) and
tops them up one sample at a time with ``add_sample``; the two must agree, or a snapshot
would change when its feed is re-read.
"""

from __future__ import annotations

import random

from analytics import live as ld
from tsstore.base import fold_runs


def _by_add_sample(samples: list[tuple[int, float]], stale_ms: int) -> list[tuple[int, int, int]]:
    runs: list[ld.Run] = []
    for ts, v in samples:
        ld.add_sample(runs, ts, int(v), stale_ms)
    return runs


def test_fold_runs_equals_folding_one_sample_at_a_time_on_random_series():
    rng = random.Random(17)
    for _ in range(200):
        ts, samples = 1_795_000_000_000, []
        for _ in range(rng.randint(0, 60)):
            ts += rng.choice([0, 1000, 1000, 1000, 4000, 9000])  # repeats, steady polling, gaps over the limit
            samples.append((ts, float(rng.choice([0, 1, 1, 2, 2.7, -1.5]))))
        got = fold_runs([t for t, _ in samples], [v for _, v in samples], 5000)
        assert got == _by_add_sample(samples, 5000), samples


def test_fold_runs_of_nothing_is_nothing():
    assert fold_runs([], [], 5000) == []
