"""Customer orders from an SME's ERP export (CSV): parsed, checked, stored, listed, handed to reports.

The delivery KPIs (the D of PQCD, ``analytics.delivery``) need what machines cannot say: when
an order was placed, when it was due and when it was finished. SMEs export that from their ERP
as CSV; ``smartfactory plant orders`` and ``POST /api/v1/orders/{tenant}`` import it.

- Columns are found by name, in English or Korean, in any order; other columns are ignored
  (ERP exports carry many). See ``COLUMNS`` and docs/api.md.
- Dates: ``2026-03-02``, ``2026/03/02`` or ``2026.03.02``, optionally with a time
  (``2026-03-02 14:30``) and a UTC offset; a time without offset is the tenant's local time.
- A file is imported whole or not at all: every problem is reported with its row (the
  header is row 1, as a spreadsheet shows it), its column and how to fix it.
- Orders are upserted by (tenant, order id): re-importing a newer export updates them
  (an order gets its completion date when it ships). An optional column (line, product,
  completed) missing from the file leaves what was stored; an empty cell clears it.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.delivery import Order as DeliveryOrder, local_date
from plantmodel.db import Line, Order, PlantDb, Site, Tenant
from plant import IDENTIFIER_PATTERN

log = logging.getLogger(__name__)

#: Field → header spellings accepted (compared without case, spaces, '_', '-', '.', '()').
COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("order_id", "order", "order_no", "order_number", "주문번호", "수주번호", "오더번호"),
    "line": ("line", "라인", "생산라인"),
    "product": ("product", "item", "part_no", "품목", "제품", "품번", "품명"),
    "quantity": ("quantity", "qty", "수량", "주문수량", "수주수량"),
    "ordered": ("ordered", "order_date", "ordered_at", "주문일", "주문일자", "수주일", "수주일자"),
    "due": ("due", "due_date", "promised_date", "납기", "납기일", "납기일자"),
    "completed": ("completed", "completed_at", "completion_date", "shipped", "ship_date", "shipped_at",
                  "완료일", "완료일자", "출하일", "출하일자", "납품일"),
}
REQUIRED = ("order_id", "quantity", "ordered", "due")
MAX_ROWS = 200_000
MAX_LISTED_PROBLEMS = 50
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\.?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
                   r"\s*(Z|[+-]\d{2}:?\d{2})?$")
_IDENT = re.compile(IDENTIFIER_PATTERN)
DATE_HINT = "write YYYY-MM-DD (e.g. 2026-03-02), optionally with a time: 2026-03-02 14:30"


def _norm(header: str) -> str:
    return re.sub(r"[\s_\-.()]", "", header.strip().lstrip("\ufeff").lower())


_ALIAS = {_norm(a): field for field, names in COLUMNS.items() for a in names}


@dataclass(frozen=True)
class Problem:
    """One reason a file is refused: row (header = 1; None for the file), column as written, message."""

    row: int | None
    column: str | None
    kind: str
    msg: str

    def text(self) -> str:
        where = ", ".join(p for p in (f"row {self.row}" if self.row else None,
                                      f"column {self.column}" if self.column else None) if p)
        return f"{where}: {self.msg}" if where else self.msg

    def as_error(self) -> dict:
        """FastAPI's 422 shape, like the alarm-rule checks (api.alarmrules)."""
        loc: list = ["body"] + ([self.row] if self.row else []) + ([self.column] if self.column else [])
        return {"type": f"orders.{self.kind}", "loc": loc, "msg": self.text(), "ctx": {}}


class OrdersRejected(ValueError):
    """The file was not imported; ``problems`` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = [p.text() for p in problems[:MAX_LISTED_PROBLEMS]]
        more = len(problems) - len(shown)
        super().__init__("no orders imported (the file is taken whole or not at all):\n  " + "\n  ".join(shown)
                         + (f"\n  ... and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class OrderRow:
    """A checked row, in the stored form (dates as ISO text, date-times with their offset)."""

    row: int
    order_id: str
    line: str | None
    product: str | None
    quantity: float
    ordered: str
    due: date
    completed: str | None
    columns: frozenset[str] = frozenset()  # fields the file has a column for


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or, as Korean Excel saves CSV, CP949."""
    for enc in ("utf-8-sig", "cp949"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise OrdersRejected([Problem(None, None, "encoding", "the file is neither UTF-8 nor CP949 (EUC-KR) text: "
                                  "save it as 'CSV UTF-8' from Excel")])


def parse_when(text: str, zone: tzinfo) -> date | datetime:
    """A date, or a time-zone-aware date-time (naive = ``zone``); ValueError when it is neither."""
    m = _DATE.match(text.strip())
    if not m:
        raise ValueError(text)
    y, mo, d, hh, mm, ss, off = m.groups()
    day = date(int(y), int(mo), int(d))  # ValueError for 2026-13-01
    if hh is None:
        if off:
            raise ValueError(text)
        return day
    at = datetime(day.year, day.month, day.day, int(hh), int(mm), int(ss or 0))
    if off:
        off = "+00:00" if off == "Z" else (off if ":" in off else off[:3] + ":" + off[3:])
        return datetime.fromisoformat(at.isoformat() + off)
    return at.replace(tzinfo=zone)


def stored(v: date | datetime) -> str:
    return v.isoformat(timespec="seconds") if isinstance(v, datetime) else v.isoformat()


def from_stored(text: str) -> date | datetime:
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)


def parse_csv(text: str, zone: tzinfo, lines: set[str] | None = None) -> list[OrderRow]:
    """Every row checked; raises OrdersRejected listing all problems (nothing is half-taken)."""
    sample = text[:4096]
    first_line = sample.splitlines()[0] if sample.strip() else ""
    delimiter = max(",;\t", key=first_line.count) if first_line else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise OrdersRejected([Problem(None, None, "empty", "the file is empty: the first row names the columns, "
                                      "e.g. order_id,quantity,ordered,due,completed")]) from None
    problems: list[Problem] = []
    where: dict[str, int] = {}
    for i, h in enumerate(header):
        field = _ALIAS.get(_norm(h))
        if field is None:
            continue
        if field in where:
            problems.append(Problem(1, h, "column_twice", f"{h!r} and {header[where[field]]!r} both mean {field}: "
                                    "keep one of them"))
        else:
            where[field] = i
    for field in REQUIRED:
        if field not in where:
            problems.append(Problem(1, None, "column_missing",
                                    f"no column for {field}: name one of the columns {', '.join(COLUMNS[field])}"))
    if problems:
        raise OrdersRejected(problems)
    name = {f: header[i] for f, i in where.items()}
    rows: list[OrderRow] = []
    first_row: dict[str, int] = {}
    for n, rec in enumerate(reader, start=2):
        if not any(c.strip() for c in rec):
            continue  # blank line
        if len(rows) >= MAX_ROWS:
            raise OrdersRejected([Problem(n, None, "too_many", f"more than {MAX_ROWS} orders in one file: split it")])
        cell = lambda f, rec=rec: rec[where[f]].strip() if f in where and where[f] < len(rec) else ""  # noqa: E731
        before = len(problems)

        def bad(field: str, kind: str, msg: str, n: int = n) -> None:
            problems.append(Problem(n, name[field], kind, msg))

        oid = cell("order_id")
        if not oid:
            bad("order_id", "order_id_missing", "order id is empty: every order needs its number from the ERP")
        elif len(oid) > 64:
            bad("order_id", "order_id_long", f"order id {oid[:20]!r}... is longer than 64 characters")
        elif oid in first_row:
            bad("order_id", "duplicate", f"order {oid!r} appears again (first in row {first_row[oid]}): "
                                         "each order once per file")
        else:
            first_row[oid] = n
        qty_text = cell("quantity").replace(",", "")
        try:
            qty = float(qty_text)
            if not math.isfinite(qty) or qty <= 0:
                raise ValueError
        except ValueError:
            qty = 0.0
            bad("quantity", "quantity", f"quantity {cell('quantity')!r} is not a number above 0: write e.g. 1200")
        when: dict[str, date | datetime | None] = {}
        for field in ("ordered", "due", "completed"):
            raw = cell(field)
            if not raw:
                when[field] = None
                if field != "completed":
                    bad(field, f"{field}_missing", f"{field} date is empty: {DATE_HINT}")
                continue
            try:
                when[field] = parse_when(raw, zone)
            except ValueError:
                when[field] = None
                bad(field, "bad_date", f"{raw!r} is not a date: {DATE_HINT}"
                    + ("; leave it empty while the order is open" if field == "completed" else ""))
        ordered, due, completed = when["ordered"], when["due"], when["completed"]
        due_day = local_date(due, zone) if due is not None else None
        if ordered is not None and due_day is not None and due_day < local_date(ordered, zone):
            bad("due", "due_before_ordered", f"due {due_day} is before the order date {local_date(ordered, zone)}: "
                                             "swapped columns, or a typo in one of the dates?")
        if ordered is not None and completed is not None and local_date(completed, zone) < local_date(ordered, zone):
            bad("completed", "completed_before_ordered", f"completed {local_date(completed, zone)} is before the order "
                f"date {local_date(ordered, zone)}: check both dates")
        line = cell("line") or None
        if line is not None:
            if not _IDENT.match(line):
                bad("line", "line_bad", f"line {line!r} is not a line id (letters, digits, '_', '-', '.'): use the "
                                        "line's slug from the plant model, or leave it empty for every line")
            elif lines is not None and line not in lines:
                bad("line", "line_unknown", f"line {line!r} is not a line of this company: use one of "
                                            f"{', '.join(sorted(lines)) or '(none yet)'}, or leave it empty")
        product = cell("product") or None
        if product is not None and len(product) > 100:
            bad("product", "product_long", "product is longer than 100 characters")
        if len(problems) == before:
            rows.append(OrderRow(n, oid, line, product, qty, stored(ordered), due_day,
                                 stored(completed) if completed else None, frozenset(where)))
    if problems:
        raise OrdersRejected(problems)
    if not rows:
        raise OrdersRejected([Problem(None, None, "no_rows", "the file has a header but no orders")])
    return rows


def _tenant(s: Session, slug: str) -> Tenant:
    t = s.scalars(select(Tenant).filter_by(slug=slug)).first()
    if t is None:
        raise LookupError(f"no tenant {slug!r} in the plant model")
    return t


def tenant_lines(s: Session, tenant: Tenant) -> set[str]:
    return set(s.scalars(select(Line.slug).join(Site, Line.site_id == Site.id).where(Site.tenant_id == tenant.id)))


def import_csv(plant: PlantDb, tenant: str, data: bytes | str) -> dict:
    """Check the whole file, then upsert every order in one transaction; counts of created and updated."""
    text = decode(data) if isinstance(data, bytes) else data
    now_ms = int(time.time() * 1000)
    with plant.session() as s, s.begin():
        t = _tenant(s, tenant)
        rows = parse_csv(text, ZoneInfo(t.timezone), tenant_lines(s, t))
        existing: dict[str, Order] = {}
        ids = [r.order_id for r in rows]
        for i in range(0, len(ids), 500):
            existing.update({o.order_id: o for o in s.scalars(
                select(Order).where(Order.tenant_id == t.id, Order.order_id.in_(ids[i:i + 500])))})
        created = 0
        for r in rows:
            o = existing.get(r.order_id)
            if o is None:
                o = Order(tenant_id=t.id, order_id=r.order_id)
                s.add(o)
                created += 1
            # an optional column the file lacks leaves what an earlier import stored (an empty cell clears it)
            for field in ("line", "product", "completed"):
                if field in r.columns or o.id is None:
                    setattr(o, field, getattr(r, field))
            o.quantity, o.ordered, o.due, o.updated_ms = r.quantity, r.ordered, r.due, now_ms
    log.info("orders_imported tenant=%s rows=%d created=%d updated=%d", tenant, len(rows), created, len(rows) - created)
    return {"tenant": tenant, "imported": len(rows), "created": created, "updated": len(rows) - created}


def order_out(o: Order) -> dict:
    return {"order_id": o.order_id, "line": o.line, "product": o.product, "quantity": o.quantity,
            "ordered": o.ordered, "due": o.due.isoformat(), "completed": o.completed,
            "status": "open" if o.completed is None else "completed"}


def list_orders(plant: PlantDb, tenant: str, offset: int = 0, limit: int = 100, status: str | None = None,
                line: str | None = None) -> dict:
    """A page of a tenant's orders, newest due date first."""
    with plant.session() as s:
        t = _tenant(s, tenant)
        where = [Order.tenant_id == t.id]
        if status == "open":
            where.append(Order.completed.is_(None))
        elif status == "completed":
            where.append(Order.completed.is_not(None))
        if line is not None:
            where.append(Order.line == line)
        total = s.scalar(select(func.count()).select_from(Order).where(*where))
        page = s.scalars(select(Order).where(*where).order_by(Order.due.desc(), Order.order_id)
                         .offset(offset).limit(limit)).all()
        return {"tenant": tenant, "total": total, "offset": offset, "limit": limit,
                "orders": [order_out(o) for o in page]}


def orders_for_report(plant: PlantDb, tenant: str) -> list[DeliveryOrder]:
    """A tenant's orders as the report builder takes them (none for an unknown tenant)."""
    with plant.session() as s:
        t = s.scalars(select(Tenant).filter_by(slug=tenant)).first()
        if t is None:
            return []
        return [DeliveryOrder(o.order_id, o.quantity, from_stored(o.ordered), o.due,
                              from_stored(o.completed) if o.completed else None, o.line, o.product)
                for o in s.scalars(select(Order).where(Order.tenant_id == t.id))]
