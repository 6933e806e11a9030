"""The addresses of every machine in the plant model, for the collector's admission check.

A read-only query (no migration, no write): the collector may run on another host than
the API and must never change the plant schema.
"""

from __future__ import annotations

from sqlalchemy import select

from plant import MachineRef
from plantmodel.db import Line, Machine, PlantDb, Site, Tenant


def machine_refs(plant: PlantDb) -> frozenset[MachineRef]:
    with plant.session() as s:
        rows = s.execute(select(Tenant.slug, Site.slug, Line.slug, Machine.slug)
                         .join(Site, Site.tenant_id == Tenant.id)
                         .join(Line, Line.site_id == Site.id)
                         .join(Machine, Machine.line_id == Line.id)).all()
    return frozenset(MachineRef(*row) for row in rows)


def loader(url: str):
    """A function returning the machine list of the plant database at ``url``, reconnecting as needed.

    A SQLite file that does not exist yet raises FileNotFoundError instead of being created
    empty here: the API creates and migrates it.
    """
    from pathlib import Path

    from plantmodel.db import redacted

    state: dict[str, PlantDb] = {}
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None

    def load() -> frozenset[MachineRef]:
        if path and path != ":memory:" and not Path(path).exists():
            raise FileNotFoundError(f"no plant database at {path} yet (the API creates it; seed it with "
                                    "smartfactory plant seed)")
        if "db" not in state:
            state["db"] = PlantDb(url)
        try:
            return machine_refs(state["db"])
        except Exception as exc:  # noqa: BLE001 - the message names the database, never its password
            raise RuntimeError(f"cannot read the machines of {redacted(url)}: {type(exc).__name__}: "
                               f"{str(exc).replace(url, redacted(url))[:300]}") from None

    return load
