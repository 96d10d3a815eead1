"""`idp serve`: gunicorn with a real config; refuses to start with a config that has problems."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port

IDP = str(Path(sys.executable).parent / "idp")


def _config(tmp_path: Path, port: int, scheme: str = "http", **extra: str) -> Path:
    path = tmp_path / "idp.yaml"
    path.write_text(f"""
issuer: {scheme}://127.0.0.1:{port}
secret_key: ${{IDP_SECRET_KEY}}
store: {{url: "memory://"}}
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
keys: {{dir: keys, generate: true}}
audit: {{sink: file, path: audit.log}}
""" + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def test_serve_refuses_config_with_problems_and_lists_them(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 1, session="{idle_timeout: 5}")
    r = subprocess.run([IDP, "serve", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items()
                                        if k != "IDP_SECRET_KEY"})
    assert r.returncode == 2
    assert "`IDP_SECRET_KEY` is not set" in r.stderr and "session.idle_timeout" in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_refuses_memory_store_with_several_workers(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 1)
    r = subprocess.run([IDP, "serve", "--config", str(cfg), "--workers", "2"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "IDP_SECRET_KEY": "k" * 48})
    assert r.returncode == 2 and "memory:// store lives in one process" in r.stderr


def test_serve_runs_gunicorn_with_the_config(tmp_path: Path) -> None:
    port = free_port()
    cfg = _config(tmp_path, port)
    env = {**os.environ, "IDP_SECRET_KEY": "k" * 48}
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--server", "gunicorn"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {
            "status": "ok"}
        r = requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert r.status_code == 200 and "csrf_token" in r.text
        assert (tmp_path / "keys" / "keys.json").exists()
        # the SSO portal's `x-amz-sso_bearer_token` (an underscore) reaches the app from a
        # loopback peer (gunicorn's forwarded_allow_ips), rather than being dropped
        r = requests.get(f"http://127.0.0.1:{port}/sso-portal/assignment/accounts",
                         headers={"x-amz-sso_bearer_token": "junk"}, timeout=5)
        assert r.headers["x-amzn-ErrorType"] == "UnauthorizedException"
        assert r.json()["message"] == "session token not found or invalid"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert b"Booting worker" in out
    assert b'127.0.0.1 - "GET /healthz HTTP/1.1" 200 ' in out  # the access log, as granian's


def _tls_material(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its PKCS#8 key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "tls.crt", tmp_path / "tls.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_serve_runs_granian_over_tls_with_the_same_app(tmp_path: Path) -> None:
    """`--server granian`: the same app, HSTS under TLS, the machine-to-machine fast path and
    the Flask pages both answer, the access log is written, and a process environment variable
    named like a header (granian copies the environment into every WSGI environ) is not taken
    for the request's own ``X-Forwarded-For``."""
    port = free_port()
    cfg = _config(tmp_path, port, "https", web="{trusted_proxies: 1}")
    certfile, keyfile = _tls_material(tmp_path)
    env = {**os.environ, "IDP_SECRET_KEY": "k" * 48, "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--server", "granian", "--certfile",
                             str(certfile), "--keyfile", str(keyfile)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"https://127.0.0.1:{port}"
    try:
        wait_for_port(port, 30)
        r = requests.get(f"{base}/healthz", timeout=5, verify=str(certfile))
        assert r.json() == {"status": "ok"}
        assert "max-age=" in r.headers["Strict-Transport-Security"]
        page = requests.get(f"{base}/login", timeout=5, verify=str(certfile))
        assert page.status_code == 200 and "csrf_token" in page.text
        assert "Secure" in page.headers["Set-Cookie"]
        bad = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=("nobody", "wrong"), timeout=5, verify=str(certfile))
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        assert "max-age=" in bad.headers["Strict-Transport-Security"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert b'"GET /healthz HTTP/1.1" 200' in out
    events = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    refused = [e for e in events if e["eventName"] == "OidcTokenRefused"]
    assert refused and refused[-1]["sourceIPAddress"] == "127.0.0.1"


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:http"],
                         ids=["no-port", "port-zero", "port-not-a-number"])
def test_serve_granian_refuses_a_bind_without_port(tmp_path: Path, bind: str) -> None:
    cfg = _config(tmp_path, 1)
    r = subprocess.run([IDP, "serve", "--config", str(cfg), "--workers", "1", "--server",
                        "granian", "--bind", bind], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "IDP_SECRET_KEY": "k" * 48})
    assert r.returncode == 2 and "HOST:PORT or unix:PATH" in r.stderr


def test_serve_runs_granian_by_default_and_keeps_the_sso_header(tmp_path: Path) -> None:
    """`idp serve` without `--server` is granian: the pages and the fast path answer, the
    access log is written, and the SSO portal's `x-amz-sso_bearer_token` (an underscore)
    reaches the app."""
    port = free_port()
    cfg = _config(tmp_path, port)
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1"], cwd=tmp_path,
                            env={**os.environ, "IDP_SECRET_KEY": "k" * 48},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 30)
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        page = requests.get(f"{base}/login", timeout=5)
        assert page.status_code == 200 and "csrf_token" in page.text
        r = requests.get(f"{base}/sso-portal/assignment/accounts",
                         headers={"x-amz-sso_bearer_token": "junk"}, timeout=5)
        assert r.headers["x-amzn-ErrorType"] == "UnauthorizedException"
        assert r.json()["message"] == "session token not found or invalid"
        ok = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                           auth=("nobody", "wrong"), timeout=5)
        assert ok.status_code == 401 and ok.json()["error"] == "invalid_client"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=40)
    assert b"Starting granian" in out and b"Booting worker" not in out, out
    assert b'"GET /healthz HTTP/1.1" 200' in out


def test_serve_granian_binds_a_unix_socket(tmp_path: Path) -> None:
    """`--bind unix:PATH` (as gunicorn takes it) serves on a Unix socket under granian."""
    import http.client

    sock_path = tmp_path / "idp.sock"
    proc = subprocess.Popen([IDP, "serve", "--config", str(_config(tmp_path, 8000)), "--bind",
                             f"unix:{sock_path}", "--workers", "1"], cwd=tmp_path,
                            env={**os.environ, "IDP_SECRET_KEY": "k" * 48},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.connect(str(sock_path))

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = UnixConnection("localhost")
                conn.request("GET", "/healthz")
                answer = conn.getresponse()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "no socket"
                time.sleep(0.2)
        assert answer.status == 200 and json.loads(answer.read()) == {"status": "ok"}
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=40)


def test_granian_respawns_a_worker_that_dies(tmp_path: Path) -> None:
    """A granian worker killed outright (SIGKILL: a crash, the OOM killer) is replaced: the
    service answers again from a new worker process, without a restart."""
    proc, port = _serve(tmp_path, "granian")
    try:
        first = _workers(proc.pid)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            now = _workers(proc.pid)
            if now and first[0] not in now:
                try:
                    r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    if r.status_code == 200:
                        break
                except requests.RequestException:
                    pass
            assert time.monotonic() < deadline, "no new worker"
            time.sleep(0.2)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.communicate(timeout=40)


def test_granian_environ_drops_process_secrets_but_keeps_request_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """granian builds each environ as ``dict(os.environ) | scope``: a secret of the process is
    taken out, while a request key that the process environment happens to share (here
    ``SERVER_NAME``) keeps the request's own value instead of disappearing."""
    from idp.cli import without_process_env

    monkeypatch.setenv("IDP_TEST_SECRET", "s3cret")
    monkeypatch.setenv("SERVER_NAME", "from-the-process")
    seen: dict[str, object] = {}

    def inner(environ: dict[str, object], start_response: object) -> list[bytes]:
        seen.update(environ)
        return [b""]

    wsgi = without_process_env(inner)
    scope = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "idp.example",
             "SERVER_PORT": "443", "HTTP_HOST": "idp.example"}
    wsgi(dict(os.environ) | scope, None)
    assert "IDP_TEST_SECRET" not in seen and "PATH" not in seen
    assert seen["SERVER_NAME"] == "idp.example" and seen["REQUEST_METHOD"] == "GET"


_STOP_DURING_STARTUP = """
import os, signal, sys
import idp.app
from idp.cli import granian_app

# what a granian worker holds before the app exists: the main process's handler, inherited
# through fork, which only records the signal
signal.signal(signal.SIGTERM, lambda *a: None)
built = idp.app.create_app

def create_app(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # `idp serve` is stopped while this worker starts
    return built(*args, **kwargs)

idp.app.create_app = create_app
granian_app()
print("still running after the stop", flush=True)
"""


def test_granian_worker_stopped_while_it_builds_the_app_ends(tmp_path: Path) -> None:
    """A SIGTERM that reaches a granian worker before granian installs its own handlers
    (while :func:`idp.cli.granian_app` builds the app) ends the worker; swallowed, the worker
    would wait forever for a stop that already came, and `idp serve` would never exit."""
    cfg = _config(tmp_path, 1)
    r = subprocess.run([sys.executable, "-c", _STOP_DURING_STARTUP], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path,
                       env={**os.environ, "IDP_SECRET_KEY": "k" * 48,
                            "IDP_SERVE_CONFIG": str(cfg)})
    assert r.returncode == -signal.SIGTERM, r.stdout + r.stderr
    assert "still running" not in r.stdout


def _serve(tmp_path: Path, server: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = _config(tmp_path, port)
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--server", server], cwd=tmp_path,
                            env={**os.environ, "IDP_SECRET_KEY": "k" * 48},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_port(port, 30)
    return proc, port


def _workers(pid: int) -> list[int]:
    """The worker processes of the server whose main process is ``pid``."""
    deadline = time.monotonic() + 20
    while not (found := subprocess.run(["pgrep", "-P", str(pid)], text=True,
                                       capture_output=True).stdout.split()):
        if time.monotonic() > deadline:
            return []
        time.sleep(0.1)
    return [int(p) for p in found]


def _read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: status line, headers, body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return status, headers, body


def _healthz(port: int) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def test_gunicorn_stop_answers_requests_on_kept_alive_connections(tmp_path: Path) -> None:
    """RFC 9112 §9.6: a stopping `idp serve` (SIGTERM to gunicorn's master) answers the
    requests clients send on their open keep-alive connections right after the signal, with
    ``Connection: close``, and at once.  A request pipelined behind another one is answered
    too (§9.3.2), the last answer closing.  gunicorn's own gthread worker closed one
    connection gracefully on its event loop (2 s while the client kept its end open), so the
    other connections' requests waited 2 s and were then reset; the pipelined one was
    dropped."""
    proc, port = _serve(tmp_path, "gunicorn")
    conns = []
    try:
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(_healthz(port))
            assert _read_response(sock)[1]["connection"] == "keep-alive"
            conns.append(sock)
        probe = conns.pop()
        proc.send_signal(signal.SIGTERM)
        # the master passes the signal on to its worker: a fifth kept-alive connection asks
        # until its answer closes, so the worker is known to be stopping (on a loaded machine
        # the signal can take longer to arrive than any fixed sleep)
        deadline = time.monotonic() + 10
        while True:
            probe.sendall(_healthz(port))
            if _read_response(probe)[1]["connection"] == "close":
                break
            assert time.monotonic() < deadline, "the worker never began to stop"
            time.sleep(0.005)
        probe.close()
        started = time.monotonic()
        conns[0].sendall(_healthz(port) * 2)  # two requests pipelined
        for sock in conns[1:]:
            sock.sendall(_healthz(port))
        first = _read_response(conns[0])
        assert first[0] == "HTTP/1.1 200 OK" and first[1]["connection"] == "keep-alive"
        answers = [_read_response(sock) for sock in conns]
        elapsed = time.monotonic() - started
        assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 4
        assert all(a[1]["connection"] == "close" and a[2] == b'{"status":"ok"}\n'
                   for a in answers), answers
        assert elapsed < 1.0, f"answers took {elapsed:.2f} s"
        for sock in conns:
            assert sock.recv(1) == b""  # then closed by the server, not reset
    finally:
        for sock in conns:
            sock.close()
        proc.wait(timeout=40)
    assert proc.returncode == 0


@pytest.mark.parametrize("target", ["master", "worker"])
def test_granian_stop_answers_in_flight_requests(tmp_path: Path, target: str) -> None:
    """A SIGTERM to granian's main process or to one of its workers lets the requests already
    being received finish: a body still arriving after the signal is read and answered."""
    proc, port = _serve(tmp_path, "granian")
    try:
        deadline = time.monotonic() + 20
        while not (workers := subprocess.run(["pgrep", "-P", str(proc.pid)], text=True,
                                             capture_output=True).stdout.split()):
            assert time.monotonic() < deadline, "no granian worker"
            time.sleep(0.1)
        body = b"grant_type=client_credentials&client_id=nobody&client_secret=wrong"
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        time.sleep(0.3)
        os.kill(proc.pid if target == "master" else int(workers[0]), signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(body[10:])
        status, _, answer = _read_response(sock)
        sock.close()
        assert status == "HTTP/1.1 401 Unauthorized"
        assert json.loads(answer)["error"] == "invalid_client"
    finally:
        proc.terminate()
        proc.wait(timeout=40)


def test_serve_error_without_detail_has_no_empty_parentheses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error found while building the app that carries no detail is printed as it is, not
    followed by ``()``."""
    from click.testing import CliRunner

    import idp.app
    from idp.cli import main
    from idp.errors import IdpError

    def broken(*args: object, **kwargs: object) -> None:
        raise IdpError("the signing keys cannot be loaded")

    monkeypatch.setattr(idp.app, "create_app", broken)
    monkeypatch.setenv("IDP_SECRET_KEY", "k" * 48)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["serve", "--config", str(_config(tmp_path, 1)),
                                       "--workers", "1"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().endswith("Error: the signing keys cannot be loaded"), \
        result.output


@pytest.mark.parametrize(("web", "server"), [("{trusted_proxies: 0}", "granian"),
                                             ("{trusted_proxies: 1}", "gunicorn")],
                         ids=["facing-clients-granian", "behind-a-proxy-gunicorn"])
def test_default_server_is_granian_unless_proxy_headers_name_the_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web: str, server: str) -> None:
    """Behind a proxy (``web.trusted_proxies``) granian would take a client's
    ``X_Forwarded_For`` for the proxy's ``X-Forwarded-For``: gunicorn, which drops it, stays
    the default there."""
    from idp.cli import default_server
    from idp.config import load_config

    monkeypatch.setenv("IDP_SECRET_KEY", "k" * 48)
    assert default_server(load_config(str(_config(tmp_path, 1, web=web)))) == server


@pytest.mark.parametrize(("server", "seen"), [("granian", "203.0.113.7"),
                                              ("gunicorn", "127.0.0.1")],
                         ids=["granian-folds-it", "gunicorn-drops-it"])
def test_underscore_forwarded_for_behind_a_proxy(tmp_path: Path, server: str,
                                                 seen: str) -> None:
    """Why gunicorn stays the default behind a proxy: with ``web.trusted_proxies: 1``, a
    client's ``X_Forwarded_For`` passes for ``X-Forwarded-For`` under granian (the address in
    the audit record is the client's choice), and is dropped by gunicorn.  If granian ever
    drops such names, this fails and the default can be granian everywhere."""
    port = free_port()
    cfg = _config(tmp_path, port, web="{trusted_proxies: 1}")
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--server", server], cwd=tmp_path,
                            env={**os.environ, "IDP_SECRET_KEY": "k" * 48},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30)
        r = requests.post(f"http://127.0.0.1:{port}/oauth2/token",
                          data={"grant_type": "client_credentials"}, auth=("nobody", "wrong"),
                          headers={"X_Forwarded_For": "203.0.113.7"}, timeout=5)
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=40)
    events = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    refused = [e for e in events if e["eventName"] == "OidcTokenRefused"]
    assert refused and refused[-1]["sourceIPAddress"] == seen
