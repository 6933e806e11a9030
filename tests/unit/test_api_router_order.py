"""The routers are matched in the order ``api.app.ROUTERS`` gives, hot ones first (to save time per
request); that is only safe while no path of one router can be answered by another."""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.app import ROUTERS
from api.routers import dashboards, history


def _clashes(routers: list[tuple[str, APIRouter]]) -> list[tuple[str, str]]:
    """(path, other path) where a route of one router matches a concrete path of another's."""
    routes = [(name, r) for name, router in routers for r in router.routes if isinstance(r, APIRoute)]
    out = []
    for name, route in routes:
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        out += [(route.path, other.path) for other_name, other in routes
                if other_name != name and route.methods & other.methods and other.path_regex.match(path)]
    return out


def test_no_path_of_one_router_is_matched_by_a_route_of_another():
    routers = [(m.__name__, m.router) for m in ROUTERS]
    assert len({name for name, _ in routers}) == len(ROUTERS)
    assert _clashes(routers) == []


def test_the_clash_check_sees_a_clash():
    """The check above would catch a route of one router that another answers (it can fail)."""
    wide, narrow = APIRouter(prefix="/api/v1"), APIRouter(prefix="/api/v1/history")
    wide.add_api_route("/{kind}/{a}/{b}/{c}/{d}", lambda: None, methods=["GET"])
    narrow.add_api_route("/{a}/{b}/{c}/{d}", lambda: None, methods=["GET"])
    assert _clashes([("wide", wide), ("narrow", narrow)]) == [
        ("/api/v1/history/{a}/{b}/{c}/{d}", "/api/v1/{kind}/{a}/{b}/{c}/{d}")]


def test_the_machine_and_line_pages_routers_are_matched_first():
    assert ROUTERS[:2] == (history, dashboards)
