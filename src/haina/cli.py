"""The ``haina`` command: serve, worker, migrate, demo, tenants, token, analytics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import make_url

from haina.campaigns.cli import app as campaigns_app
from haina.core.config import get_settings
from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.core.errors import Problem
from haina.core.schema import SchemaBehind, ensure_current, upgrade
from haina.crossborder.cli import app as crossborder_app
from haina.o2o.cli import app as o2o_app
from haina.privacy.cli import app as privacy_app
from haina.webhooks.cli import app as webhooks_app

app = typer.Typer(help="Haina, an open commerce platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
tenants_app = typer.Typer(help="Merchants (tenants).", no_args_is_help=True)
token_app = typer.Typer(help="Staff API tokens.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(token_app, name="token")
staff_app = typer.Typer(help="Staff accounts that sign in to the web pages.", no_args_is_help=True)
apps_app = typer.Typer(help="Service providers' apps and the marketplace.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(apps_app, name="apps")

out = Console(soft_wrap=True)  # a URL or token must not be broken across lines
err = Console(stderr=True)


class UserError(Exception):
    """Bad input from the person at the terminal: one line on stderr, exit 1."""


def _engine(must_exist: bool = False):
    """The database's engine. With ``must_exist``, a SQLite file that is not there is a user
    error rather than an empty file made by connecting (the default URL is relative to the
    current directory: a command run elsewhere would leave a stray ``var/haina.db``)."""
    settings = get_settings()
    if must_exist:
        path = _sqlite_file(settings.database_url)
        if path is not None and not path.exists():
            raise UserError(f"no database at {path.resolve()} (a relative HAINA_DATABASE_URL is "
                            "relative to the current directory): run `haina migrate` first, "
                            "or set HAINA_DATABASE_URL")
    return make_engine(settings.database_url, echo=settings.echo_sql)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(database)


def _sessions(check: bool = True):
    engine = _engine(must_exist=True)
    if check:
        ensure_current(engine)
    return make_sessionmaker(engine)


@app.command()
def migrate() -> None:
    """Upgrade the database (HAINA_DATABASE_URL) to the latest schema."""
    engine = _engine()
    before, after = upgrade(engine)
    if before == after:
        out.print(f"database already at {after}")
    else:
        out.print(f"database upgraded from {before or 'empty'} to {after}")


@tenants_app.command("create")
def tenants_create(slug: str, name: Annotated[str | None, typer.Option(help="display name")] = None,
                   currency: Annotated[str, typer.Option(help="ISO 4217 code")] = "CNY") -> None:
    """Create a merchant."""
    from haina.platform import service
    with transaction(_sessions()) as session:
        t = service.create_tenant(session, slug, name, currency.upper())
    out.print(f"created tenant {t.slug} ({t.id})")


@tenants_app.command("list")
def tenants_list() -> None:
    """List merchants."""
    from haina.platform import service
    with transaction(_sessions()) as session:
        rows = service.list_tenants(session)
    table = Table("slug", "id", "name", "currency", "created")
    for t in rows:
        table.add_row(t.slug, t.id, t.name, t.currency, t.created_at.isoformat(timespec="seconds"))
    out.print(table)


@token_app.command("create")
def token_create(tenant: Annotated[str, typer.Option(help="tenant slug")],
                 scopes: Annotated[str, typer.Option(help='e.g. "orders:write members:read" or "*"')] = "*",
                 label: Annotated[str | None, typer.Option()] = None) -> None:
    """Create a bearer token; prints only the token (shown once; only its hash is stored)."""
    from haina.platform import service
    with transaction(_sessions()) as session:
        created = service.create_token(session, tenant, scopes, label)
    print(created.token)


@token_app.command("list")
def token_list(tenant: Annotated[str, typer.Option(help="tenant slug")]) -> None:
    """List a merchant's tokens: id, label, scopes, created, revoked (never the token itself,
    which is not stored)."""
    from haina.platform import service

    with transaction(_sessions()) as session:
        rows = service.list_tokens(session, tenant)
    table = Table("id", "label", "scopes", "created", "revoked", title=f"tokens of {tenant}")
    for r in rows:
        table.add_row(r.id, r.label or "", r.scopes, r.created_at.isoformat(timespec="seconds"),
                      r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (tok_…)."""
    from haina.platform import service
    with transaction(_sessions()) as session:
        service.revoke_token(session, token_id)
    out.print(f"revoked {token_id}")


def _password_from_stdin() -> str:
    """A password: typed at a terminal (not echoed), or one line of stdin."""
    if sys.stdin.isatty():
        import getpass
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UserError("no password on stdin (give it as one line)")
    return password


@staff_app.command("create")
def staff_create(tenant: Annotated[str, typer.Option(help="tenant slug")],
                 email: Annotated[str, typer.Option(help="sign-in email")],
                 role: Annotated[str, typer.Option(help="owner | staff | read-only")] = "owner") -> None:
    """Create a staff account; the password is read as one line on stdin (never an argument,
    which other users of the machine could see)."""
    from haina.platform import service
    password = _password_from_stdin()
    with transaction(_sessions()) as session:
        created = service.create_staff(session, tenant, email, password, role)
    out.print(f"created {created.role} {created.email} for {tenant} ({created.id})")


@staff_app.command("set-password")
def staff_set_password(tenant: Annotated[str, typer.Option(help="tenant slug")],
                       email: Annotated[str, typer.Option(help="the account's sign-in email")]) -> None:
    """Set a staff account's password (the operator's reset); the password is read as one line
    on stdin, like `staff create`. Lifts a lock after failed sign-ins and ends the account's
    sessions."""
    from haina.platform import service
    password = _password_from_stdin()
    with transaction(_sessions()) as session:
        changed = service.set_staff_password(session, tenant, email, password)
    out.print(f"password set for {changed.email} at {tenant} ({changed.id}); "
              "their sessions are ended")


@apps_app.command("create")
def apps_create(name: Annotated[str, typer.Option(help="the app's name")],
                redirect_uri: Annotated[list[str], typer.Option(
                    help="where an authorization may return (repeat for several)")],
                scopes: Annotated[str, typer.Option(help='e.g. "orders:read members:read"')],
                category: Annotated[str, typer.Option(
                    help="operations-agency, photography-content, logistics, customs-broker, "
                         "installer, analytics or marketing")] = "operations-agency",
                description: Annotated[str, typer.Option()] = "",
                webhook_url: Annotated[str | None, typer.Option()] = None,
                pricing: Annotated[str, typer.Option(help="pricing in plain words")] = "",
                unlisted: Annotated[bool, typer.Option(help="keep it out of the marketplace")] = False,
                as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Register an app; prints its client id and secret (the secret is shown once)."""
    import json

    from pydantic import ValidationError

    from haina.platform import service
    from haina.platform.schemas import AppIn
    try:
        body = AppIn(name=name, description=description, category=category,
                     redirect_uris=redirect_uri, scopes=scopes.replace(",", " ").split(),
                     webhook_url=webhook_url, pricing=pricing, listed=not unlisted)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    with transaction(_sessions()) as session:
        created = service.register_app(session, body)
    if as_json:
        print(json.dumps({"client_id": created.client_id,
                          "client_secret": created.client_secret}))
    else:
        out.print(f"registered {created.name}\nclient_id:     {created.client_id}\n"
                  f"client_secret: {created.client_secret}  (shown once)")


@apps_app.command("list")
def apps_list() -> None:
    """Every app, listed in the marketplace or not."""
    from haina.platform import service
    with transaction(_sessions()) as session:
        rows = service.list_apps(session)
    table = Table("client id", "name", "category", "scopes", "listed", "certified")
    for a in rows:
        table.add_row(a.id, a.name, a.category, " ".join(a.scopes), "yes" if a.listed else "no",
                      "yes" if a.certified else "")
    out.print(table)


@apps_app.command("plan")
def apps_plan(client_id: str, plan: Annotated[str, typer.Argument(
        help="a key of HAINA_RATE_LIMIT_PLANS: standard, plus or premium by default")]) -> None:
    """Put an app on a rate-limit plan (requests per second and burst per merchant)."""
    from haina.platform import service
    plans = get_settings().rate_limit_plans
    with transaction(_sessions()) as session:
        app_out = service.set_app_plan(session, client_id, plan, list(plans))
    rate, burst = plans[plan]
    out.print(f"{app_out.name} is on {plan}: {rate:g} requests a second per merchant, "
              f"bursts of {burst}")


@apps_app.command("certify")
def apps_certify(client_id: str,
                 evidence: Annotated[str, typer.Option(help="what the certification rests on")],
                 category: Annotated[str | None, typer.Option(
                     help="default: the app's own category")] = None,
                 by: Annotated[str, typer.Option(help="who certifies")] = "platform") -> None:
    """Certify an app for a category (platform staff), recording the evidence."""
    from haina.platform import service
    with transaction(_sessions()) as session:
        app_out = service.get_app(session, client_id)
        app_out = service.certify_app(session, client_id, category or app_out.category,
                                      evidence, by)
    out.print(f"certified {app_out.name} for {category or app_out.category}")


@app.command()
def demo(quick: Annotated[bool, typer.Option(help="a smaller data set, for tests")] = False,
         seed: int = 7) -> None:
    """Load the demo merchants (idempotent): demo-tires and demo-beauty."""
    from haina.demo import load_demo
    load_demo(_sessions(), quick=quick, seed=seed, console=err)


@app.command()
def worker(once: Annotated[bool, typer.Option(help="run one pass and exit")] = False,
           interval: Annotated[float, typer.Option(help="seconds between passes")] = 5.0,
           parent_pid: Annotated[int | None, typer.Option(
               hidden=True, help="stop when this process (haina serve) is gone")] = None) -> None:
    """Run the background worker: analytics refreshes, unpaid-order expiry, points expiry,
    housekeeping."""
    from haina.worker import run_forever, run_once
    sessions = _sessions()
    if once:
        out.print(run_once(sessions))
        return
    # SIGTERM (serve stopping, systemd, docker stop) ends the loop through its cleanup
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    orphaned = (lambda: os.getppid() != parent_pid) if parent_pid else (lambda: False)
    try:
        run_forever(sessions, interval, should_stop=orphaned)
    except KeyboardInterrupt:
        pass


def _start_worker(database_url: str) -> subprocess.Popen:
    """``haina worker`` as a child process of ``serve``: background work never runs in the
    process that answers requests. It has its own session (a Ctrl-C reaches serve, which stops
    it) and stops by itself if serve dies without stopping it."""
    return subprocess.Popen(
        [sys.executable, "-m", "haina.cli", "worker", "--parent-pid", str(os.getpid())],
        env={**os.environ, "HAINA_DATABASE_URL": database_url}, start_new_session=True)


def _stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DEMO_OWNER = "owner@demo-tires.example"


def _queue_demo_refresh(sessions) -> None:
    """Queue demo-tires' first analytics refresh, unless it has scores or one is queued."""
    try:
        from haina.analytics import service as analytics
        from haina.analytics.schemas import RefreshIn
    except ImportError:  # the [analytics] extra is not installed
        return
    from haina.core.errors import Problem
    from haina.platform import service
    with transaction(sessions) as session:
        tenant = service.tenant_for_slug(session, "demo-tires")
        if analytics.list_runs(session, tenant, limit=1).data:
            return
        try:
            analytics.start_refresh(session, tenant, RefreshIn())
        except Problem:  # one is queued or running already
            pass


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="default HAINA_HOST or 127.0.0.1")] = None,
          port: Annotated[int | None, typer.Option(help="default HAINA_PORT or 8000")] = None,
          workers: Annotated[int | None, typer.Option(help="server processes")] = None,
          demo_data: Annotated[bool, typer.Option("--demo", help="migrate, load demo data and print a token first")] = False,
          with_worker: Annotated[bool, typer.Option("--worker/--no-worker", help="run the background worker as a child process")] = True,
          access_log: Annotated[bool, typer.Option(help="log every request")] = False) -> None:
    """Serve the API on HAINA_HOST:HAINA_PORT, and the background worker in a process of its
    own (stopped with serve)."""
    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if demo_data:
        from haina.demo import load_demo
        from haina.platform import service
        upgrade(_engine())
        sessions = _sessions()
        load_demo(sessions, console=err)
        with transaction(sessions) as session:
            token = service.create_token(session, "demo-tires", "*", label="make run").token
            # the demo's owner signs in with a password made for this run
            import secrets
            password = secrets.token_urlsafe(12)
            service.demo_staff(session, "demo-tires", DEMO_OWNER, password)
            from haina.storefront import service as storefront
            shop_key = storefront.shop_key(session, "demo-tires")
        _queue_demo_refresh(sessions)  # the console's lifecycle pages (the worker runs it)
    _sessions()  # refuses to start on a database that is behind
    out.print(f"Haina is serving on [bold]http://{host}:{port}[/]  (API docs: http://{host}:{port}/docs)")
    if demo_data:
        out.print(f"demo merchant demo-tires, token: [bold]{token}[/]")
        out.print(f"try: curl -H 'Authorization: Bearer {token}' http://{host}:{port}/v1/products")
        out.print(f"merchant console: [bold]http://{host}:{port}/console[/]  sign in as "
                  f"[bold]{DEMO_OWNER}[/], password [bold]{password}[/]")
        if shop_key is not None:
            out.print(f"reference shop: [bold]http://{host}:{port}/shop/demo-tires[/]  "
                      f"(publishable key {shop_key.key}; sign-in codes in the sandbox inbox)")
    os.environ.setdefault("HAINA_DATABASE_URL", settings.database_url)
    worker_process = _start_worker(settings.database_url) if with_worker else None
    # uvicorn re-raises the SIGTERM it shut down for: make it an exit that runs the finally
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run("haina.api:app_from_env", factory=True, host=host, port=port,
                    workers=workers, access_log=access_log, log_level="warning")
    finally:
        if worker_process is not None:
            _stop_worker(worker_process)


def _mount_optional() -> None:
    try:
        from haina.analytics.cli import app as analytics_app
    except ImportError as exc:  # the [analytics] extra is not installed
        missing = str(exc)

        @app.command("analytics", context_settings={"allow_extra_args": True,
                                                    "ignore_unknown_options": True})
        def analytics_missing() -> None:
            """Lifecycle analytics (needs the [analytics] extra)."""
            raise UserError(f"analytics needs the [analytics] extra: pip install 'haina[analytics]' ({missing})")
    else:
        app.add_typer(analytics_app, name="analytics", help="Lifecycle analytics: RFM, CLV, cohorts.")


_mount_optional()
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(crossborder_app, name="crossborder")
app.add_typer(privacy_app, name="privacy")
app.add_typer(o2o_app, name="o2o")
app.add_typer(campaigns_app, name="campaigns")


def _fail(message: str, code: int) -> None:
    """One line on stderr, never wrapped, then exit."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)


def main() -> None:
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except (UserError, Problem, SchemaBehind, ValueError) as exc:
        message = getattr(exc, "detail", None) or str(exc)
        _fail(message, 1)
    except Exception as exc:  # click's usage errors (Typer vendors click, so match by shape)
        name = type(exc).__name__
        if name == "Abort":
            sys.exit(130)
        if name == "Exit":
            sys.exit(getattr(exc, "exit_code", 0))
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            _fail(exc.format_message(), 1)
        raise


if __name__ == "__main__":
    main()
