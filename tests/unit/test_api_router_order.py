"""The routers are matched in the order ``api.app.ROUTERS`` gives, hot ones first (to save time per
request); that is only safe while no path of one router can be answered by another."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from api.app import ROUTERS
from api.routers import dashboards, history


def _routes() -> list[tuple[str, APIRoute]]:
    return [(m.__name__, r) for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]


def test_no_path_of_one_router_is_matched_by_a_route_of_another():
    routes = _routes()
    assert len({name for name, _ in routes}) == len(ROUTERS)
    clashes = []
    for name, route in routes:
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        clashes += [(route.path, other.path) for other_name, other in routes
                    if other_name != name and route.methods & other.methods and other.path_regex.match(path)]
    assert clashes == []


def test_the_clash_check_sees_a_clash():
    """The check above would catch a route of one router that another answers (it can fail)."""
    route = APIRoute("/api/v1/history/{tenant}/{site}/{line}/{machine}", endpoint=lambda: None, methods=["GET"])
    path = re.sub(r"\{[^}]+\}", "x1", "/api/v1/history/{a}/{b}/{c}/{d}")
    assert route.path_regex.match(path)


def test_the_machine_and_line_pages_routers_are_matched_first():
    assert ROUTERS[:2] == (history, dashboards)
