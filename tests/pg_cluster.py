"""A throwaway PostgreSQL server on loopback, for the database-source tests (not a mock: the real server).

`.ci/run` installs the `postgresql` package; `start()` finds its binaries under /usr/lib/postgresql/*/bin,
runs `initdb` into a temporary directory and `pg_ctl start` on a free port. initdb refuses to run as
root, so as root the cluster belongs to the `postgres` user the package creates (`runuser`).
The server requires a password (scram-sha-256), so the tests can check that it never shows in a status.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "ferroflag"
PASSWORD = "pg-secret-3f9a"  # a throwaway cluster's; the tests assert that it is never shown
DATABASE = "ferroflag"


def bin_dir() -> Path | None:
    """The newest installed server's binaries, or None when PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    bin: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stdout}{result.stderr}\n{log[-2000:]}")
        return result

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def settings(self) -> dict[str, object]:
        """A Django DATABASES entry."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DATABASE,
            "USER": USER,
            "PASSWORD": PASSWORD,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CONN_MAX_AGE": 0,
        }

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Cluster:
    """Creates and starts a cluster with a database `ferroflag` owned by user `ferroflag`.

    Raises:
        FileNotFoundError: PostgreSQL is not installed.
        RuntimeError: initdb, pg_ctl or createdb failed (with their output and the server log).
    """
    binaries = bin_dir()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    root = Path(tempfile.mkdtemp(prefix="ferroflag-pg-"))
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as is not None:
        shutil.chown(root, user=run_as)
    cluster = Cluster(binaries, root, _free_port(), run_as)
    try:
        pwfile = root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if run_as is not None:
            shutil.chown(pwfile, user=run_as)
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", USER, "--pwfile", str(pwfile), "-A", "scram-sha-256",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        cluster.start()
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        createdb = [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", USER, DATABASE]
        subprocess.run(createdb, env=env, capture_output=True, text=True, timeout=60, check=True)
    except BaseException:
        cluster.remove()
        raise
    return cluster
