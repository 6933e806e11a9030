"""Builds the API app from a config file: for ``smartfactory api`` and for each of its uvicorn workers.

With ``api.workers`` > 1 uvicorn starts fresh worker processes that import an app factory
by name, so the config path travels in ``SMARTFACTORY_CONFIG`` and every worker builds the
same app here. The workers share the listening socket; the background duties go to the
one holding the leader lock (``api.leader``): a file lock on SQLite, a PostgreSQL advisory
lock when the plant database is PostgreSQL (then API processes on several hosts share it).
On PostgreSQL the rollup maintainer is a leased worker (``analytics.leases``): the leader's
by default, every API process's with ``analytics.rollups_in_api: every``.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from fastapi import FastAPI

from cli.config import LoadedConfig, load_config

CONFIG_ENV = "SMARTFACTORY_CONFIG"
WORKERS_ENV = "SMARTFACTORY_API_WORKERS"  # how many workers uvicorn starts (worker_app is only used with more than one)
#: The GIL switch interval in an API process (Python's default: 5 ms). The event loop gives up the GIL at
#: every socket call; with a range answer or a snapshot being computed in a thread, it then waited up to
#: 5 ms to get it back, several times per request, which made cached answers wait seconds (bench/api.py).
SWITCH_INTERVAL_S = 0.001


def build_app(config: LoadedConfig, plant=None, workers: int = 1) -> FastAPI:
    """The served API (``workers``: how many processes serve it; with more than one they share range answers)."""
    from analytics import workcalendar
    from analytics.command import maintainer_for, open_cache
    from api.answerstore import AnswerStore
    from api.app import create_app
    from api.leader import leader_lock_for
    from plantmodel.db import database_url, open_plant
    from plantmodel.policy import effective_settings
    from tsstore import open_store

    sys.setswitchinterval(SWITCH_INTERVAL_S)
    workcalendar.preload()  # before serving: the first dashboard would otherwise wait for it
    s = config.settings
    store = open_store(s.store, config.base_dir)
    plant = plant or open_plant(database_url(s.api.database_url, config.base_dir))
    cache = open_cache(s.analytics, s.store, config.base_dir, plant.url)
    rollups = None
    if s.analytics.maintain_rollups:
        # the policies reports read (completed from the plant model: ideal cycle times are in a row's shape),
        # else the maintainer keeps rows no report reads and every report starts cold
        rollups = maintainer_for(store, effective_settings(s.analytics, plant), cache)
    delivery = None
    if s.mail is not None:
        from reportmail.service import delivery_for

        delivery = delivery_for(s.mail, s.analytics, store, plant, cache)
    lock_file = Path(s.api.leader_lock)
    lock = leader_lock_for(plant.url, lock_file if lock_file.is_absolute() else config.base_dir / lock_file,
                           lease_s=s.api.leader_lease_s)
    answers = None
    if s.api.shared_answers and workers > 1:
        path = Path(s.api.shared_answers)
        answers = AnswerStore(path if path.is_absolute() else config.base_dir / path)
    return create_app(store, s.api, plant, leader_lock=lock, rollups=rollups, analytics=s.analytics, rollup_cache=cache,
                      delivery=delivery, warm=True, shared_answers=answers)


def freeze_startup_objects() -> int:
    """Exempt what start-up built (modules, classes, the app, its routes: ~150k objects) from the cyclic
    garbage collector, so its full collections walk only what serving created since; returns how many.

    Under load a full collection ran every few seconds and held the GIL for 110-145 ms each time,
    walking mostly these objects, which live as long as the process: that stall was the largest single
    part of the API's p95 (bench/api.py). Frozen objects are still freed by reference counting; only
    cycles among them would stay, and start-up's objects form none that die. Call it once, in the API
    process, after the app is built (not in tests: it would exempt the test process's objects too).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def worker_app() -> FastAPI:
    """Factory for uvicorn workers (``cli.apiserver:worker_app``)."""
    from cli.logs import LOG_FORMAT_ENV, setup_logging

    setup_logging(os.environ.get("SMARTFACTORY_LOG_LEVEL", "INFO"), os.environ.get(LOG_FORMAT_ENV, "text"))
    app = build_app(load_config(Path(os.environ[CONFIG_ENV])), workers=int(os.environ.get(WORKERS_ENV, "2")))
    freeze_startup_objects()
    return app
