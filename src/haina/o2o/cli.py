"""``haina o2o``: service points, their slots and bookings from the terminal.

::

    haina o2o points list --tenant SLUG [--status active|closed]
    haina o2o points create --tenant SLUG --file points.json   (one point, or a list of them)
    haina o2o slots --tenant SLUG --point sp_… --service tire-fitting --date 2026-12-07
    haina o2o bookings list --tenant SLUG [--point sp_…] [--status confirmed]
    haina o2o bookings create --tenant SLUG --point sp_… --service tire-fitting --start ISO
    haina o2o resources add --tenant SLUG --point sp_… --code lift --capacity 1 [--name …]
    haina o2o resources assign --tenant SLUG --point sp_… --service tire-fitting
                               (--resource lift | --off)

Bad input (an unknown merchant or point, a file that is not the API's JSON, a full slot) is
one line on stderr and exit status 1 (``haina.cli.main`` prints the problem's detail).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from haina.core.errors import Invalid

app = typer.Typer(help="O2O: service points, slots and bookings.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
points_app = typer.Typer(help="Service points.", no_args_is_help=True)
bookings_app = typer.Typer(help="Bookings.", no_args_is_help=True)
app.add_typer(points_app, name="points")
app.add_typer(bookings_app, name="bookings")
resources_app = typer.Typer(help="Resources a point's services share (a lift, a stylist).",
                            no_args_is_help=True)
app.add_typer(resources_app, name="resources")
out = Console(soft_wrap=True, stderr=False)
TENANT = Annotated[str, typer.Option(help="merchant (or installer) slug")]
STATUSES = ("held", "confirmed", "checked_in", "completed", "cancelled", "expired")


def _sessions():
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker
    from haina.core.schema import ensure_current
    engine = make_engine(get_settings().database_url)
    ensure_current(engine)
    return make_sessionmaker(engine)


def _one_line(exc: ValidationError, where: str) -> Invalid:
    first = exc.errors()[0]
    at = ".".join(str(p) for p in first["loc"]) or "(top)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return Invalid(f"{where}: {at}: {first['msg']}{more}")


def _run(tenant: str, work: Any) -> Any:
    from haina.core.db import transaction
    from haina.platform import service as platform
    with transaction(_sessions()) as session:
        return work(session, platform.tenant_for_slug(session, tenant))


@points_app.command("list")
def points_list(tenant: TENANT, status: Annotated[str | None, typer.Option(
        help="active or closed")] = None,
        limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """The merchant's service points, newest first."""
    from haina.o2o import service
    if status not in (None, "active", "closed"):
        raise Invalid(f"--status must be active or closed, not {status!r}")
    page = _run(tenant, lambda s, t: service.list_points(s, t, status=status, limit=limit))
    table = Table("id", "name", "status", "lat, lng (WGS-84)", "time zone", "services")
    for p in page.data:
        table.add_row(p.id, p.name, p.status, f"{p.location.lat:.5f}, {p.location.lng:.5f}",
                      p.timezone, ", ".join(f"{s.code}×{s.capacity}" for s in p.services))
    out.print(table)
    if page.has_more:
        out.print(f"more: the API's ?cursor={page.next_cursor}")


@points_app.command("create")
def points_create(tenant: TENANT, file: Annotated[Path, typer.Option(
        "--file", help="JSON: the body of POST /v1/service-points, or a list of them")]) -> None:
    """Create service points from a JSON file: all of them, or none (one transaction)."""
    from haina.o2o import service
    from haina.o2o.schemas import ServicePointCreate
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Invalid(f"cannot read {file}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"{file} is not JSON: {exc}") from None
    items = raw if isinstance(raw, list) else [raw]
    bodies = []
    for n, item in enumerate(items):
        try:
            bodies.append(ServicePointCreate.model_validate(item))
        except ValidationError as exc:
            raise _one_line(exc, f"{file.name}[{n}]") from None
    made = _run(tenant, lambda s, t: [service.create_point(s, t, b) for b in bodies])
    for p in made:
        out.print(f"{p.id}  {p.name}  ({', '.join(s.code for s in p.services) or 'no services'})")
    out.print(f"{len(made)} service point(s) created")


@app.command()
def slots(tenant: TENANT, point: Annotated[str, typer.Option(help="the point (sp_…)")],
          service: Annotated[str, typer.Option(help="service code, e.g. tire-fitting")],
          date: Annotated[str, typer.Option(help="the point's local date, YYYY-MM-DD")]) -> None:
    """A day's slots of a service at a point, with the places left."""
    from haina.o2o import service as o2o
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise Invalid(f"--date must be YYYY-MM-DD, not {date!r}") from None
    got = _run(tenant, lambda s, t: o2o.slots(s, t, point, service, day))
    table = Table("start", "end", "available", title=f"{point} {service} {day} ({got.timezone})")
    for slot in got.data:
        table.add_row(slot.start.isoformat(), slot.end.strftime("%H:%M"),
                      f"{slot.available}/{slot.capacity}")
    out.print(table)


@bookings_app.command("list")
def bookings_list(tenant: TENANT,
                  point: Annotated[str | None, typer.Option(help="one point's")] = None,
                  status: Annotated[str | None, typer.Option(help="held, confirmed, …")] = None,
                  limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """Bookings, newest first (the installer's list with --point)."""
    from haina.o2o import service
    if status is not None and status not in STATUSES:
        raise Invalid(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    page = _run(tenant, lambda s, t: service.list_bookings(s, t, point_id=point, status=status,
                                                           limit=limit))
    table = Table("id", "status", "point", "service", "start", "order")
    for b in page.data:
        table.add_row(b.id, b.status, b.service_point_id, b.service, b.start.isoformat(),
                      b.order_id or "")
    out.print(table)


@bookings_app.command("create")
def bookings_create(tenant: TENANT, point: Annotated[str, typer.Option(help="sp_…")],
                    service: Annotated[str, typer.Option(help="service code")],
                    start: Annotated[str, typer.Option(help="a slot's start, ISO 8601 with "
                                                            "its offset")],
                    hold: Annotated[bool, typer.Option(help="hold for 10 minutes")] = False,
                    ) -> None:
    """Book a slot (or hold it); a full slot is an error."""
    from haina.o2o import service as o2o
    from haina.o2o.schemas import BookingCreate
    try:
        body = BookingCreate.model_validate({"service_point_id": point, "service": service,
                                             "start": start, "hold": hold})
    except ValidationError as exc:
        raise _one_line(exc, "booking") from None
    b = _run(tenant, lambda s, t: o2o.book(s, t, body))
    out.print(f"{b.id} {b.status} {b.service} at {b.start.isoformat()}")


@resources_app.command("add")
def resources_add(tenant: TENANT, point: Annotated[str, typer.Option(help="the point (sp_…)")],
                  code: Annotated[str, typer.Option(help="the resource's code, e.g. lift")],
                  capacity: Annotated[int, typer.Option(help="how many at once")],
                  name: Annotated[str | None, typer.Option(help="its name")] = None) -> None:
    """Add a resource that services of the point share, ``capacity`` at once."""
    from haina.o2o import service
    from haina.o2o.schemas import ResourceIn
    try:
        body = ResourceIn.model_validate({"code": code, "capacity": capacity, "name": name})
    except ValidationError as exc:
        raise _one_line(exc, "resource") from None
    made = _run(tenant, lambda s, t: service.add_resource(s, t, point, body))
    for r in made.resources:
        out.print(f"{r.code}  {r.name}  capacity {r.capacity}  "
                  f"({', '.join(r.services) or 'no services yet'})")


@resources_app.command("assign")
def resources_assign(tenant: TENANT,
                     point: Annotated[str, typer.Option(help="the point (sp_…)")],
                     service_code: Annotated[str, typer.Option(
                         "--service", help="the service's code, e.g. tire-fitting")],
                     resource: Annotated[str | None, typer.Option(
                         help="the resource it takes a place of")] = None,
                     off: Annotated[bool, typer.Option(
                         "--off", help="take it off its resource")] = False) -> None:
    """Put a service on a resource of its point (its bookings take their places there too),
    or take it off."""
    from haina.o2o import service
    from haina.o2o.schemas import ServiceUpdate
    if (resource is None) == (not off):
        raise Invalid("give either --resource CODE or --off")
    try:
        body = ServiceUpdate.model_validate({"resource": None if off else resource})
    except ValidationError as exc:
        raise _one_line(exc, "service") from None
    made = _run(tenant, lambda s, t: service.update_service(s, t, point, service_code, body))
    on = next((r.code for r in made.resources if service_code in r.services), None)
    out.print(f"{service_code} at {point}: " + (f"on {on}" if on else "on no resource"))
