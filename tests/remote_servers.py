"""Real servers on loopback for the remote-source tests and benchmark.

* :class:`Nginx` runs the Debian ``nginx`` binary (package ``nginx-light``)
  with its own configuration in a temporary prefix: ``/samples/`` serves a
  directory with range requests, ``/noranges/`` the same directory with
  ``max_ranges 0;`` (Range headers ignored: whole files only), ``/forbidden/``
  answers 403.  Its access log records ``$body_bytes_sent`` per request, which
  is how the tests measure the bytes a read moves.
* :func:`moto_s3` runs moto's standalone S3 server (``ThreadedMotoServer``)
  and uploads files into a bucket.

The pytest fixtures ``nginx``, ``s3`` and ``remote_root`` (the served directory)
are session scoped; import their functions (``nginx_fixture``...) into a test
module to use them.  The classes work without pytest (the benchmark uses
:class:`Nginx` directly).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

NGINX_BINARY = "/usr/sbin/nginx"
INSTALL_HINT = (
    "the remote tests need nginx: install the Debian package nginx-light "
    "(apt-get install nginx-light), which provides /usr/sbin/nginx"
)
START_TIMEOUT_S = 20.0
LOG_TIMEOUT_S = 20.0

#: One access-log line: method, uri, status, body bytes sent, Range header.
LOG_FORMAT = '$request_method $uri $status $body_bytes_sent "$http_range"'


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until 127.0.0.1:*port* accepts connections (or *proc* died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass(frozen=True)
class LogEntry:
    """One request as nginx logged it."""

    method: str
    uri: str
    status: int
    body_bytes: int
    range: str


def _parse_line(line: str) -> LogEntry:
    head, _, rng = line.partition(' "')
    method, uri, status, sent = head.split(" ")
    return LogEntry(method, uri, int(status), int(sent), rng.rstrip().removesuffix('"'))


class Nginx:
    """An nginx server on a free loopback port serving *root*.

    Parameters
    ----------
    root : Path
        Directory served under ``/samples/`` and ``/noranges/``.
    extra_roots : mapping, optional
        More ``location name -> directory`` pairs served with ranges.
    """

    def __init__(self, root: Path, extra_roots: dict[str, Path] | None = None) -> None:
        if not os.access(NGINX_BINARY, os.X_OK):
            raise RuntimeError(INSTALL_HINT)
        self.root = Path(root).resolve()
        self.extra_roots = {k: Path(v).resolve() for k, v in (extra_roots or {}).items()}
        self.prefix = Path(tempfile.mkdtemp(prefix="nd2-nginx-"))
        self.port = free_port()
        self.access_log = self.prefix / "access.log"
        self.error_log = self.prefix / "error.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ life cycle
    def _config(self) -> str:
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        temp = self.prefix / "temp"
        temp.mkdir(exist_ok=True)
        temps = "\n".join(
            f"    {kind}_temp_path {temp / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        extra = "\n".join(
            f"        location /{name}/ {{ alias {path}/; }}"
            for name, path in self.extra_roots.items()
        )
        return f"""
{user}
daemon off;
master_process off;
worker_processes 1;
pid {self.prefix / "nginx.pid"};
error_log {self.error_log} warn;
events {{ worker_connections 256; }}
http {{
    log_format nd2bytes '{LOG_FORMAT}';
    access_log {self.access_log} nd2bytes;
{temps}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        location /samples/ {{ alias {self.root}/; }}
        location /noranges/ {{ alias {self.root}/; max_ranges 0; }}
        location /forbidden/ {{ return 403; }}
        location /marker/ {{ return 204; }}
{extra}
    }}
}}
"""

    def start(self) -> Nginx:
        """Write the configuration, start nginx and wait for its port."""
        conf = self.prefix / "nginx.conf"
        conf.write_text(self._config(), encoding="utf-8")
        self._proc = subprocess.Popen(
            [NGINX_BINARY, "-p", str(self.prefix), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, START_TIMEOUT_S, self._proc)
        except RuntimeError as exc:
            err = self._stop_and_collect()
            raise RuntimeError(f"nginx did not start ({exc}): {err}") from None
        return self

    def _stop_and_collect(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        log = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
        return (stderr + log).strip()

    def stop(self) -> None:
        """Stop nginx and remove its prefix directory."""
        self._stop_and_collect()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs
    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str, location: str = "samples") -> str:
        """URL of file *name* under *location* (``samples``, ``noranges``, ...)."""
        return f"{self.base}/{location}/{name}"

    # ------------------------------------------------------------ access log
    def _marker(self) -> str:
        """Send a marker request and wait until nginx logged it; return its URI.

        With a single worker, every request answered before the marker was
        logged before it: the lines above the marker are complete.
        """
        import urllib.request

        uri = f"/marker/{uuid.uuid4().hex}"
        with urllib.request.urlopen(self.base + uri, timeout=LOG_TIMEOUT_S) as resp:
            resp.read()
        deadline = time.monotonic() + LOG_TIMEOUT_S
        while time.monotonic() < deadline:
            if uri in self.access_log.read_text(encoding="utf-8", errors="replace"):
                return uri
            time.sleep(0.01)
        raise RuntimeError(f"nginx did not log {uri} within {LOG_TIMEOUT_S} s")

    def mark(self) -> int:
        """A position in the access log: requests after it are what comes next."""
        uri = self._marker()
        text = self.access_log.read_bytes()
        return text.index(uri.encode()) + text[text.index(uri.encode()) :].index(b"\n") + 1

    def entries_since(self, mark: int) -> list[LogEntry]:
        """Requests logged after *mark* (markers left out), all complete."""
        uri = self._marker()
        lines = self.access_log.read_bytes()[mark:].decode("utf-8", "replace").splitlines()
        entries: list[LogEntry] = []
        for line in lines:
            if uri in line:
                break
            if line.strip():
                entry = _parse_line(line)
                if not entry.uri.startswith("/marker/"):
                    entries.append(entry)
        return entries

    @contextlib.contextmanager
    def measure(self) -> Iterator[list[LogEntry]]:
        """Collect the requests made inside the ``with`` block (filled on exit)."""
        found: list[LogEntry] = []
        start = self.mark()
        yield found
        found.extend(self.entries_since(start))


def body_bytes(entries: Sequence[LogEntry]) -> int:
    """Total body bytes of *entries*."""
    return sum(e.body_bytes for e in entries)


# ------------------------------------------------------------------------- S3
BUCKET = "nd2-samples"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    """moto's S3 server with a bucket holding uploaded files."""

    endpoint: str
    bucket: str
    storage_options: dict[str, Any]

    def url(self, name: str) -> str:
        """``s3://bucket/name``."""
        return f"s3://{self.bucket}/{name}"


@contextlib.contextmanager
def moto_s3(files: Sequence[Path]) -> Iterator[S3Server]:
    """Run moto's standalone S3 server holding *files* in a bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port, START_TIMEOUT_S)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        for path in files:
            client.upload_file(str(path), BUCKET, path.name)
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        yield S3Server(endpoint, BUCKET, options)
    finally:
        server.stop()


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session", name="remote_root")
def remote_root_fixture(tmp_path_factory: pytest.TempPathFactory, built_dir: Path) -> Path:
    """Directory served remotely: every sample (symlinked) and every built file."""
    from conftest import SAMPLES

    root = tmp_path_factory.mktemp("remote-root")
    for path in SAMPLES:
        (root / path.name).symlink_to(path)
    for path in sorted(built_dir.glob("*.nd2")):
        (root / f"built-{path.name}").symlink_to(path)
    (root / "not-nd2.bin").write_bytes(b"this is not an ND2 file\n" * 100)
    return root


def ensure_nginx() -> bool:
    """Install Debian's nginx-light if /usr/sbin/nginx is missing; True if it is there.

    The test suite installs what it needs itself (as it builds the oracle venvs):
    as root with apt-get, otherwise with ``sudo -n`` when that needs no password.
    The package starts a server on port 80; it is stopped at once (the tests run
    their own on free ports).
    """
    if os.access(NGINX_BINARY, os.X_OK):
        return True
    if shutil.which("apt-get") is None:
        return False
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "nginx-light"]
    for cmd in (install, [*sudo, "apt-get", "update", "-q"], install):
        subprocess.run(cmd, env=env, capture_output=True, timeout=900)
        if os.access(NGINX_BINARY, os.X_OK):
            break
    subprocess.run([*sudo, NGINX_BINARY, "-s", "stop"], capture_output=True, timeout=60)
    return os.access(NGINX_BINARY, os.X_OK)


@pytest.fixture(scope="session", name="nginx")
def nginx_fixture(remote_root: Path) -> Iterator[Nginx]:
    """nginx serving ``remote_root`` (installed if missing; fails, not skips, without it)."""
    if not ensure_nginx():
        pytest.fail(INSTALL_HINT, pytrace=False)
    with Nginx(remote_root) as server:
        yield server


@pytest.fixture(scope="session", name="s3")
def s3_fixture(remote_root: Path) -> Iterator[S3Server]:
    """moto's S3 server holding every file of ``remote_root``."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAKE_CREDENTIALS.items():
            mp.setenv(key, value)
        with moto_s3(sorted(p for p in remote_root.iterdir() if p.is_file())) as server:
            yield server
