"""Order records (delivery, D of PQCD): CSV import checks, all-or-nothing, upsert, migration, API, CLI."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from plantmodel.orders import OrdersRejected, import_csv, list_orders, orders_for_report, parse_csv
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import Order, alembic_config, open_plant
from api.settings import ApiSettings
from cli.main import cli
from tsstore.sqlite import SqliteStore

SEOUL = ZoneInfo("Asia/Seoul")
SEED = PlantSeed.model_validate({
    "tenants": [
        {"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [{"slug": "press-1"}]}]}]},
        {"slug": "beta", "sites": [{"slug": "plant-9", "lines": [{"slug": "line-z", "machines": [{"slug": "cnc-7"}]}]}]},
    ],
    "users": [
        {"username": "owner-a", "password": "owner-pass-1", "role": "sme_owner", "tenant": "acme"},
        {"username": "operator-a", "password": "oper-pass-1", "role": "sme_operator", "tenant": "acme"},
        {"username": "owner-b", "password": "owner-pass-2", "role": "sme_owner", "tenant": "beta"},
    ],
})
GOOD = ("order_id,line,product,quantity,ordered,due,completed\n"
        "SO-1,line-a,bracket,1200,2026-03-02,2026-03-09,2026-03-06\n"
        "SO-2,,bracket,\"1,500\",2026/03/03 09:30,2026.03.12,\n"
        "SO-3,line-a,hinge,10,2026-03-04T08:00:00+09:00,2026-03-05,2026-03-05 23:30\n")


def problems(text: str, lines=None) -> list[str]:
    with pytest.raises(OrdersRejected) as exc:
        parse_csv(text, SEOUL, lines)
    return [p.text() for p in exc.value.problems]


# -- parsing --------------------------------------------------------------------------------------
def test_english_file_with_dates_times_and_an_open_order():
    rows = parse_csv(GOOD, SEOUL, {"line-a"})
    assert [(r.row, r.order_id, r.line, r.quantity) for r in rows] == [
        (2, "SO-1", "line-a", 1200.0), (3, "SO-2", None, 1500.0), (4, "SO-3", "line-a", 10.0)]
    assert rows[0].ordered == "2026-03-02" and rows[0].completed == "2026-03-06" and rows[0].due == date(2026, 3, 9)
    assert rows[1].ordered == "2026-03-03T09:30:00+09:00" and rows[1].completed is None  # naive = tenant time
    assert rows[2].completed == "2026-03-05T23:30:00+09:00"


def test_korean_headers_in_another_order_and_extra_columns_ignored():
    text = ("비고,납기,주문번호,수량,주문일,완료일,품목,라인\n"
            "급함,2026-03-09,수주-001,500,2026-03-02,2026-03-10,브래킷,line-a\n")
    (r,) = parse_csv(text, SEOUL, {"line-a"})
    assert (r.order_id, r.product, r.due, r.completed, r.line) == ("수주-001", "브래킷", date(2026, 3, 9), "2026-03-10", "line-a")
    # header spelling variants: case, spaces, underscores and the BOM Excel writes
    (r,) = parse_csv("\ufeffOrder No,QTY,Order Date,Due Date,Ship Date\nA,1,2026-03-02,2026-03-03,\n", SEOUL)
    assert r.order_id == "A" and r.completed is None


def test_each_problem_names_row_column_and_fix():
    text = ("order_id,quantity,ordered,due,completed\n"
            "A,10,2026-03-02,2026-13-01,\n"  # row 2: no 13th month
            "B,10,2026-03-05,2026-03-01,\n"  # row 3: due before ordered
            "A,10,2026-03-02,2026-03-04,\n"  # row 4: A again
            "C,-5,yesterday,2026-03-04,2026-03-01\n")  # row 5: quantity, ordered
    got = problems(text)
    assert got[0] == "row 2, column due: '2026-13-01' is not a date: write YYYY-MM-DD (e.g. 2026-03-02), optionally " \
                     "with a time: 2026-03-02 14:30"
    assert got[1].startswith("row 3, column due: due 2026-03-01 is before the order date 2026-03-05")
    assert got[2] == "row 4, column order_id: order 'A' appears again (first in row 2): each order once per file"
    assert got[3].startswith("row 5, column quantity: quantity '-5' is not a number above 0")
    assert got[4].startswith("row 5, column ordered: 'yesterday' is not a date")
    assert len(got) == 5


def test_missing_columns_and_unknown_lines():
    got = problems("order_id,qty,ordered\nA,1,2026-03-02\n")
    assert got == ["row 1: no column for due: name one of the columns due, due_date, promised_date, 납기, 납기일, 납기일자"]
    got = problems("order_id,qty,ordered,due,line\nA,1,2026-03-02,2026-03-03,line-q\n", {"line-a"})
    assert got == ["row 2, column line: line 'line-q' is not a line of this company: use one of line-a, or leave it empty"]
    got = problems("order_id,qty,ordered,due,completed\nA,1,2026-03-05,2026-03-06,2026-03-01\n")
    assert got[0].startswith("row 2, column completed: completed 2026-03-01 is before the order date 2026-03-05")
    assert problems("") == ["the file is empty: the first row names the columns, e.g. order_id,quantity,ordered,due,completed"]


# -- storing --------------------------------------------------------------------------------------
@pytest.fixture()
def plant(tmp_path):
    db = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(db, SEED)
    yield db
    db.close()


def test_a_bad_file_imports_nothing_and_a_newer_export_updates(plant):
    assert import_csv(plant, "acme", GOOD.encode()) == {"tenant": "acme", "imported": 3, "created": 3, "updated": 0}
    bad = GOOD.replace("SO-2,", "SO-9,").replace("2026-03-05,2026-03-05 23:30", "2026-03-05,not-a-date")
    with pytest.raises(OrdersRejected):
        import_csv(plant, "acme", bad.encode())
    assert list_orders(plant, "acme")["total"] == 3  # SO-9 was not taken although its row was fine
    newer = "주문번호,수량,주문일,납기,완료일\nSO-2,1500,2026-03-03,2026-03-12,2026-03-11\n"
    assert import_csv(plant, "acme", newer.encode("cp949"))["updated"] == 1  # Korean Excel's encoding
    page = list_orders(plant, "acme", status="open")
    assert page["total"] == 0
    loaded = {o.order_id: o for o in orders_for_report(plant, "acme")}
    assert loaded["SO-2"].completed == date(2026, 3, 11) and loaded["SO-2"].product == "bracket"  # no column: kept
    assert loaded["SO-3"].ordered == datetime(2026, 3, 4, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    assert orders_for_report(plant, "beta") == []
    with pytest.raises(LookupError):
        import_csv(plant, "nobody", GOOD.encode())


def test_orders_are_per_tenant_with_the_same_id(plant):
    import_csv(plant, "acme", GOOD)
    import_csv(plant, "beta", "order_id,qty,ordered,due\nSO-1,5,2026-03-02,2026-03-03\n")
    with plant.session() as s:
        assert len(s.scalars(select(Order).filter_by(order_id="SO-1")).all()) == 2
    assert [o["order_id"] for o in list_orders(plant, "beta")["orders"]] == ["SO-1"]


def test_upgrade_from_0002_and_back(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, inspect, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0002")
    with create_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO centres (id, name) VALUES (1, 'c')"))
        conn.execute(text("INSERT INTO tenants (id, centre_id, slug, name, timezone) VALUES (1, 1, 'acme', 'A', 'UTC')"))
    plant = open_plant(url)  # to head: 0003
    import_csv(plant, "acme", "order_id,qty,ordered,due\nA,1,2026-03-02,2026-03-03\n")
    assert [o.order_id for o in orders_for_report(plant, "acme")] == ["A"]
    command.downgrade(alembic_config(url, plant.engine), "0002")
    assert "orders" not in inspect(plant.engine).get_table_names()
    with plant.engine.connect() as conn:
        assert conn.execute(text("SELECT slug FROM tenants")).scalars().all() == ["acme"]  # the rest stays
    plant.close()


# -- API ------------------------------------------------------------------------------------------
@pytest.fixture()
def client(plant, tmp_path):
    app = create_app(SqliteStore(tmp_path / "store.db"), ApiSettings(), plant, run_alarms=False)

    def login(user: str, password: str) -> TestClient:
        c = TestClient(app)
        assert c.post("/api/v1/auth/login", json={"username": user, "password": password}).status_code == 200
        return c

    return login


def test_api_import_list_and_errors(client):
    owner = client("owner-a", "owner-pass-1")
    r = owner.post("/api/v1/orders/acme", content=GOOD.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["created"] == 3, r.text
    page = owner.get("/api/v1/orders/acme", params={"limit": 2})
    assert page.json()["total"] == 3 and [o["order_id"] for o in page.json()["orders"]] == ["SO-2", "SO-1"]
    assert owner.get("/api/v1/orders/acme", params={"offset": 2}).json()["orders"][0]["order_id"] == "SO-3"
    assert owner.get("/api/v1/orders/acme", params={"status": "open"}).json()["total"] == 1
    bad = owner.post("/api/v1/orders/acme", content=b"order_id,qty,ordered,due\nX,1,2026-03-09,2026-03-01\n",
                     headers={"content-type": "text/csv; charset=utf-8"})
    assert bad.status_code == 422
    (err,) = bad.json()["detail"]
    assert err["loc"] == ["body", 2, "due"] and err["type"] == "orders.due_before_ordered" and "row 2" in err["msg"]
    assert owner.get("/api/v1/orders/acme").json()["total"] == 3
    assert owner.post("/api/v1/orders/acme", json={"a": 1}).status_code == 415
    assert "orders:write" in owner.get("/api/v1/me").json()["permissions"]


def test_api_operators_read_but_cannot_import_and_tenants_are_isolated(client):
    client("owner-b", "owner-pass-2").post("/api/v1/orders/beta", content=b"order_id,qty,ordered,due\nB1,1,2026-03-02,2026-03-03\n",
                                           headers={"content-type": "text/csv"})
    operator = client("operator-a", "oper-pass-1")
    assert operator.post("/api/v1/orders/acme", content=GOOD.encode(), headers={"content-type": "text/csv"}).status_code == 403
    assert operator.get("/api/v1/orders/acme").status_code == 200
    owner_a = client("owner-a", "owner-pass-1")
    for r in (owner_a.get("/api/v1/orders/beta"),
              owner_a.post("/api/v1/orders/beta", content=GOOD.encode(), headers={"content-type": "text/csv"})):
        assert r.status_code == 404 and r.json() == {"detail": "not found"}
    assert client("owner-b", "owner-pass-2").get("/api/v1/orders/beta").json()["total"] == 1  # B's untouched


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_import_and_its_errors(tmp_path):
    cfg = tmp_path / "sf.yaml"
    cfg.write_text("store: {kind: sqlite, path: store.db}\napi: {database_url: 'sqlite:///plant.db'}\n")
    db = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(db, SEED)
    db.close()
    good, bad = tmp_path / "orders.csv", tmp_path / "bad.csv"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text("주문번호,수량,주문일,납기\nA,1,2026-03-02,2026-03-03\nA,1,2026-03-02,2026-03-03\n", encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(cli, ["plant", "orders", "-c", str(cfg), "--tenant", "acme", str(good)])
    assert r.exit_code == 0 and "imported 3 orders for acme (3 new, 0 updated)" in r.output, r.output
    r = runner.invoke(cli, ["plant", "orders", "-c", str(cfg), "--tenant", "acme", str(bad)])
    assert r.exit_code == 2
    assert "row 3, column 주문번호: order 'A' appears again (first in row 2)" in r.stderr and "no orders imported" in r.stderr
    r = runner.invoke(cli, ["plant", "orders", "-c", str(cfg), "--tenant", "zeta", str(good)])
    assert r.exit_code == 2 and "no tenant 'zeta'" in r.stderr
    db = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    assert list_orders(db, "acme")["total"] == 3
    db.close()


def test_demo_imports_orders_that_fit_its_history(tmp_path):
    """The demo's export covers the backfilled days only and lands in the plant model for the report's D."""
    from cli.demo import DemoOptions, LINE, TENANT, build_scenario, seed_orders, seed_plant

    opts = DemoOptions(None, None, "smartfactory", tmp_path, "127.0.0.1", 8000, 1.0, history_days=28)
    scenario = build_scenario(opts, [1, 2, 3], datetime(2026, 3, 30, 12, tzinfo=timezone.utc).timestamp())
    seed_plant(tmp_path, scenario["rollout"]["date"])
    path = seed_orders(tmp_path, scenario)
    assert path is not None and path.read_text(encoding="utf-8").startswith("주문번호,라인,")
    db = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    orders = orders_for_report(db, TENANT)
    db.close()
    start = date.fromisoformat(scenario["start"])
    done = [o.completed for o in orders if o.completed is not None]
    assert len(done) == 28 * 8 and min(done) == start and max(done) == start + timedelta(days=27)
    assert {o.line for o in orders} == {LINE} and sum(o.completed is None for o in orders) == 3
