"""A throwaway PostgreSQL cluster in a temp dir, for tests and benchmarks (initdb + pg_ctl).

PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres`` system user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable_reason() -> str | None:
    """Why a throwaway cluster cannot start here, or None."""
    if shutil.which("pg_ctl") is None or shutil.which("initdb") is None:
        return "PostgreSQL binaries (initdb, pg_ctl) are not on PATH"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (the [pg] extra)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as the postgres user"
    return None


class PgCluster:
    """Trust auth on loopback; ``durable=False`` turns off fsync for fast tests."""

    def __init__(self, durable: bool = False, extra: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="haina-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        options = {"listen_addresses": "127.0.0.1", "max_connections": "200",
                   "unix_socket_directories": str(self.dir)}
        if not durable:
            options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        options.update(extra or {})
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-E", "UTF8", "--locale=C",
                  "-U", "postgres")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p {self.port} {opts}", "start")

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *cmd], check=True, capture_output=True, text=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        subprocess.run([*self.as_user, "pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
