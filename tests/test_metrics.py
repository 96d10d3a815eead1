"""``GET /metrics``: Prometheus text scraped after real traffic, in one process and summed over
the workers of ``idp serve --workers 2`` (multiprocess mode); only for allowed clients."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port
from tests.fixtures.slapd import Slapd
from tests.helpers import config, login, make_app

IDP = str(Path(sys.executable).parent / "idp")
TOKEN = "metrics-token-0123456789"


def value(text: str, name: str, **labels: str) -> float:
    """One sample of the exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{([^}]*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if got == want:
                return float(m.group(3))
    return 0.0


def test_metrics_count_both_paths_sign_ins_and_store_errors(tmp_path: Path,
                                                           demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, metrics={
        "enabled": True, "token": TOKEN}), demo=True)
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    login(client, "alice", "wrong-password")
    login(client, "alice", "alice-password")
    # the direct WSGI path answers both: a form (401, no client) and a JSON body (400)
    form = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
    again = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
    as_json = client.post("/oauth2/token", json={"grant_type": "client_credentials"})
    assert form.status_code == again.status_code == 401 and as_json.status_code == 400
    after = client.get("/metrics")
    assert after.status_code == 200 and after.mimetype == "text/plain"
    text = after.get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(before, name, **labels)

    assert delta("idp_http_requests_total", endpoint="/healthz", status="200") == 3
    assert delta("idp_http_requests_total", endpoint="/oauth2/token", status="401") == 2
    assert delta("idp_http_requests_total", endpoint="/oauth2/token", status="400") == 1, \
        "requests the direct WSGI path answers are counted"
    assert delta("idp_signins_total", outcome="failed") == 1
    assert delta("idp_signins_total", outcome="ok") == 1
    assert delta("idp_http_request_duration_seconds_count", endpoint="/healthz") == 3
    comps.close()


@pytest.mark.parametrize(("remote", "auth", "status"), [
    pytest.param("127.0.0.1", None, 200, id="loopback needs no token"),
    pytest.param("203.0.113.9", None, 404, id="another address is refused"),
    pytest.param("203.0.113.9", f"Bearer {TOKEN}", 200, id="the token opens it from anywhere"),
    pytest.param("203.0.113.9", "Bearer wrong-token-0123456789", 404, id="a wrong token"),
])
def test_metrics_are_only_for_allowed_clients(tmp_path: Path, demo_keys_dir: Path,
                                              remote: str, auth: str | None,
                                              status: int) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, metrics={
        "enabled": True, "token": TOKEN}))
    headers = {"Authorization": auth} if auth else {}
    r = app.test_client().get("/metrics", headers=headers,
                              environ_base={"REMOTE_ADDR": remote})
    assert r.status_code == status
    assert (b"idp_http_requests_total" in r.data) == (status == 200)
    comps.close()


def test_metrics_are_off_unless_enabled(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    assert app.test_client().get("/metrics").status_code == 404
    comps.close()


@pytest.mark.redis
@pytest.mark.parametrize("named", [pytest.param(False, id="a folder of the instance"),
                                   pytest.param(True, id="a folder the operator names")])
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_metrics_add_up_every_worker(tmp_path: Path, redis_url: str, named: bool,
                                     server: str) -> None:
    port = free_port()
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(f"""
issuer: http://127.0.0.1:{port}
secret_key: ${{IDP_SECRET_KEY}}
store: {{url: "{redis_url}"}}
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
keys: {{dir: keys, generate: true}}
audit: {{sink: none}}
metrics: {{enabled: true}}
""")
    shared = tmp_path / "metrics"  # an operator-named folder shows who wrote there
    shared.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["IDP_SECRET_KEY"] = "k" * 48
    if named:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "--threads", "2", "--server", server],
                            env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30)
        base = f"http://127.0.0.1:{port}"
        sent = 0
        with ThreadPoolExecutor(8) as pool:  # concurrent connections: both workers answer
            while sent < 400:
                codes = list(pool.map(lambda _: requests.get(f"{base}/healthz",
                                                              timeout=5).status_code,
                                      range(40)))
                assert codes == [200] * 40
                sent += 40
                if not named or len(list(shared.glob("counter_*.db"))) >= 2:
                    break
        for _ in range(5):
            r = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                              timeout=5)
            assert r.status_code == 401
        text = requests.get(f"{base}/metrics", timeout=5).text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=40)[0].decode(errors="replace")
    started = {"gunicorn": "Booting worker", "granian": "Spawning worker"}[server]
    assert out.count(started) >= 2, out
    if named:
        writers = {p.name for p in shared.glob("counter_*.db")}
        assert len(writers) >= 2, f"both workers answered and counted: {writers}"
    assert value(text, "idp_http_requests_total", endpoint="/healthz", status="200") == sent
    assert value(text, "idp_http_requests_total", endpoint="/oauth2/token", status="401") == 5


def test_grafana_dashboard_queries_only_metrics_the_idp_exports(tmp_path: Path,
                                                                demo_keys_dir: Path) -> None:
    """deploy/grafana-dashboard.json: every series it graphs is in a real scrape."""
    import json

    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, metrics={"enabled": True}))
    client = app.test_client()
    login(client, "alice", "alice-password")
    from idp import metrics

    metrics.store_error("GET")
    metrics.directory_error()
    text = client.get("/metrics").get_data(as_text=True)
    comps.close()
    exported = {m.group(1) for m in re.finditer(r"^([a-z_]+)[ {]", text, re.M)}
    dashboard = json.loads((Path(__file__).parents[1] / "deploy" /
                            "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b(idp_[a-z_]+)", target["expr"])}
    assert queried and queried <= exported, queried - exported


def test_metrics_count_what_is_issued_and_refused_by_reason(tmp_path: Path,
                                                           demo_keys_dir: Path) -> None:
    """Tokens, SAML assertions and STS credentials issued, and refused with the protocol's
    own error code as the reason, after real requests."""
    import base64

    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, metrics={"enabled": True}),
                             demo=True)
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    service = "Basic " + base64.b64encode(b"demo-service:demo-service-secret").decode()
    for _ in range(2):
        ok = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": service})
        assert ok.status_code == 200
    bad = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                             "refresh_token": "x" * 40},
                      headers={"Authorization": service})
    assert bad.status_code == 400
    login(client, "alice", "alice-password")
    page = client.get("/saml/idp-initiated?sp=urn:amazon:webservices")
    assert page.status_code == 200 and "SAMLResponse" in page.get_data(as_text=True)
    sts = client.post("/sts", data={
        "Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "SAMLAssertion": "eA==",
        "RoleArn": "arn:aws:iam::111122223333:role/ReadOnly",
        "PrincipalArn": "arn:aws:iam::111122223333:saml-provider/demo-idp"})
    assert sts.status_code == 400
    text = client.get("/metrics").get_data(as_text=True)
    comps.close()

    def delta(**labels: str) -> float:
        return value(text, "idp_issued_total", **labels) - value(before, "idp_issued_total",
                                                                  **labels)

    assert delta(kind="token", outcome="issued") == 2
    assert delta(kind="token", outcome=bad.json["error"]) == 1
    assert delta(kind="assertion", outcome="issued") == 1
    code = re.search(r"<Code>(\w+)</Code>", sts.get_data(as_text=True))
    assert code and delta(kind="sts_credentials", outcome=code.group(1)) == 1


def test_metrics_time_store_commands_and_directory_calls(tmp_path: Path, demo_keys_dir: Path,
                                                         redis_url: str, slapd: Slapd) -> None:
    """A sign-in against a real slapd with the session in a real Redis: the store's commands
    and the directory's authenticate are timed (histograms by backend and operation)."""
    ldap = {"type": "ldap", "ldap": slapd.ldap_config().model_dump(mode="json")}
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, metrics={"enabled": True},
                                    store={"url": redis_url}, directory=ldap))
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    r = login(client, "alice", "alice-password")
    assert r.status_code in (302, 303)
    text = client.get("/metrics").get_data(as_text=True)
    comps.close()
    name = "idp_backend_duration_seconds_count"
    assert value(text, name, backend="directory", op="authenticate") - value(
        before, name, backend="directory", op="authenticate") == 1
    store_ops = {m.group(1) for m in re.finditer(
        r'^idp_backend_duration_seconds_count\{backend="store",op="(\w+)"\}', text, re.M)}
    assert {"GET", "SET"} <= store_ops, store_ops
