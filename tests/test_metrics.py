"""``GET /metrics``: Prometheus text scraped after real traffic, in one process and summed over
the workers of ``idp serve --workers 2`` (multiprocess mode); only for allowed clients."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography import x509

from idp import metrics
from idp.app import build_components, create_app
from idp.demo import USERS_FILE
from idp.keys import MANIFEST, KeyRing, init_keys, list_keys
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


def key_series(text: str, name: str) -> dict[tuple[str, str, str, str], float]:
    """Every sample of a key gauge by (use, kid, alg, state); a series seen twice fails."""
    series: dict[tuple[str, str, str, str], float] = {}
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        labels = (got["use"], got["kid"], got["alg"], got["state"])
        assert labels not in series and len(got) == 4, f"{labels} twice, or more labels"
        series[labels] = float(m.group(2))
    return series


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


def serve_config(tmp_path: Path, port: int, redis_url: str) -> Path:
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
    return cfg


def day_old_keys(folder: Path) -> tuple[float, set[str]]:
    """Keys made a day ago (a sum over two workers would say two days): when, and their kids."""
    init_keys(folder)
    manifest = list_keys(folder)
    day_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(timespec="seconds")
    (folder / MANIFEST).write_text(json.dumps(
        {"keys": [dict(e, created=day_ago) for e in manifest]}))
    return dt.datetime.fromisoformat(day_ago).timestamp(), {e["kid"] for e in manifest}


def assert_key_ages_of_one_process(scrapes: list[str], kids: set[str], created: float,
                                   scraping: float, scraped_at: float) -> None:
    for scraped in scrapes:
        ages = key_series(scraped, "idp_signing_key_age_seconds")
        assert {kid for _, kid, _, _ in ages} == kids
        for age in ages.values():
            assert scraping - created <= age <= scraped_at - created, \
                "one process's value, not the sum over the workers"


@pytest.mark.redis
@pytest.mark.parametrize("named", [pytest.param(False, id="a folder of the instance"),
                                   pytest.param(True, id="a folder the operator names")])
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_metrics_add_up_every_worker_but_not_key_ages(tmp_path: Path, redis_url: str,
                                                      named: bool, server: str) -> None:
    port = free_port()
    cfg = serve_config(tmp_path, port, redis_url)
    created, kids = day_old_keys(tmp_path / "keys")
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
        scraping = time.time()
        text = requests.get(f"{base}/metrics", timeout=5).text
        with ThreadPoolExecutor(4) as pool:  # several scrapes: each worker answers some
            scrapes = list(pool.map(lambda _: requests.get(f"{base}/metrics", timeout=5).text,
                                    range(8)))
        scraped_at = time.time()
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
    assert_key_ages_of_one_process([text, *scrapes], kids, created, scraping, scraped_at)


@pytest.mark.redis
def test_key_ages_under_granian_workers_are_one_processs_values(tmp_path: Path,
                                                                 redis_url: str) -> None:
    """Under granian's workers (multiprocess mode too) every scrape shows each key's age
    once, as one process sees it, and the requests of every worker."""
    port = free_port()
    cfg = serve_config(tmp_path, port, redis_url)
    created, kids = day_old_keys(tmp_path / "keys")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["IDP_SECRET_KEY"] = "k" * 48
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "--server", "granian"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30)
        base = f"http://127.0.0.1:{port}"
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: requests.get(f"{base}/healthz", timeout=5)
                                  .status_code, range(80)))
        assert codes == [200] * 80
        scraping = time.time()
        with ThreadPoolExecutor(4) as pool:
            scrapes = list(pool.map(lambda _: requests.get(f"{base}/metrics", timeout=5).text,
                                    range(8)))
        scraped_at = time.time()
    finally:
        proc.terminate()
        proc.wait(40)
    assert value(scrapes[0], "idp_http_requests_total", endpoint="/healthz", status="200") == 80
    assert_key_ages_of_one_process(scrapes, kids, created, scraping, scraped_at)


DASHBOARD = Path(__file__).parents[1] / "deploy" / "grafana-dashboard.json"
# prometheus_client's default collectors: in a single process only (not under `idp serve`,
# whose /metrics is the multiprocess sum of the idp_ families)
DEFAULT_FAMILIES = re.compile(r"^(process|python)_")


def test_grafana_dashboard_graphs_every_metric_family_and_only_those(
        tmp_path: Path, demo_keys_dir: Path, redis_url: str) -> None:
    """deploy/grafana-dashboard.json: every metric family of a real scrape (after sign-ins,
    SAML and an STS refusal, sessions in a real Redis) is in at least one panel's
    expression, and every series a panel queries is in the scrape."""
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, metrics={"enabled": True},
                                    store={"url": redis_url}), demo=True)
    client = app.test_client()
    login(client, "alice", "wrong-password")
    login(client, "alice", "alice-password")
    assert client.get("/saml/idp-initiated?sp=urn:amazon:webservices").status_code == 200
    assert client.post("/sts", data={"Action": "AssumeRoleWithSAML", "SAMLAssertion": "eA==",
                                     "Version": "2011-06-15"}).status_code == 400
    metrics.store_error("GET")
    metrics.directory_error()
    text = client.get("/metrics").get_data(as_text=True)
    comps.close()
    families = {m.group(1): m.group(2)
                for m in re.finditer(r"^# TYPE ([a-z_]+) (\w+)$", text, re.M)}
    created = {f"{f.removesuffix('_total')}_created" for f, kind in families.items()
               if kind in ("counter", "histogram")}  # prometheus_client's series start times
    ours = {f for f in families if not DEFAULT_FAMILIES.match(f) and f not in created}
    assert all(f.startswith("idp_") for f in ours), ours
    assert {"idp_signing_key_age_seconds", "idp_signing_key_expiry_seconds",
            "idp_backend_duration_seconds", "idp_issued_total", "idp_signins_total"} <= ours
    samples = {m.group(1) for m in re.finditer(r"^([a-z_]+)[ {]", text, re.M)}
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b(idp_[a-z_]+)", target["expr"])}
    suffixes = {"counter": ("",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    unused = {f for f in ours if not any(f + sfx in queried for sfx in suffixes[families[f]])}
    assert not unused, f"families no panel graphs: {sorted(unused)}"
    assert queried <= samples, f"panels query what /metrics lacks: {queried - samples}"


def test_grafana_dashboard_is_a_grafana_dashboard() -> None:
    """The JSON imports into Grafana: a Prometheus datasource variable every panel uses,
    unique panel ids, panels on the 24-column grid without overlapping, targets with
    unique refIds and balanced PromQL expressions."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"],
                                                                  int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: dict[tuple[int, int], int] = {}
    for p in panels:
        assert p["type"] in {"timeseries", "stat", "gauge", "bargauge", "table"}, p["type"]
        assert p["title"] and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "xywh")
        assert 0 <= g["x"] and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, g
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['id']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["id"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(set(refs)) == len(refs)
        for t in p["targets"]:
            expr = t["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            assert expr.count("[") == expr.count("]"), expr


def test_key_age_and_expiry_are_those_of_the_keys_that_sign(tmp_path: Path,
                                                             demo_keys_dir: Path) -> None:
    """After real traffic, /metrics gives every signing key's age (since the key folder's
    `created`) and its certificate's time to notAfter, by use: the SAML metadata keys
    (RS256, next and active), the JWKS keys, and the audit trail's digest keys."""
    cfg = config(tmp_path, demo_keys_dir, metrics={"enabled": True}, audit={
        "sink": "trail", "dir": str(tmp_path / "trail"),
        "keys_dir": str(tmp_path / "audit-keys")})
    comps = build_components(cfg, demo=True)
    app = create_app(cfg, comps, demo=True)
    client = app.test_client()
    service = "Basic " + base64.b64encode(b"demo-service:demo-service-secret").decode()
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        headers={"Authorization": service})
    assert token.status_code == 200
    header = json.loads(base64.urlsafe_b64decode(token.json["access_token"].split(".")[0]
                                                 + "=="))
    login(client, "alice", "alice-password")
    assert client.get("/saml/idp-initiated?sp=urn:amazon:webservices").status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    now = time.time()
    comps.close()

    def expected(folder: Path, use: str) -> dict[tuple[str, str, str, str], tuple[float,
                                                                                     float]]:
        out = {}
        for e in list_keys(folder):
            cert = x509.load_pem_x509_certificate((folder / f"{e['kid']}.crt.pem").read_bytes())
            if use == "oidc" or (e["alg"] == "RS256" and (use == "audit" or e["state"] in (
                    "next", "active"))):
                out[(use, e["kid"], e["alg"], e["state"])] = (
                    now - dt.datetime.fromisoformat(e["created"]).timestamp(),
                    cert.not_valid_after_utc.timestamp() - now)
        return out

    want = {**expected(demo_keys_dir, "saml"), **expected(demo_keys_dir, "oidc"),
            **expected(tmp_path / "audit-keys", "audit")}
    ages = key_series(text, "idp_signing_key_age_seconds")
    expiries = key_series(text, "idp_signing_key_expiry_seconds")
    assert set(ages) == set(expiries) == set(want)
    for labels, (age, expiry) in want.items():
        assert age - 5 <= ages[labels] <= age + 1, labels
        assert expiry - 1 <= expiries[labels] <= expiry + 5, labels
    assert ("oidc", header["kid"], header["alg"], "active") in ages, "the key that signed"
    assert {u for u, *_ in ages} == {"saml", "oidc", "audit"}


@pytest.mark.parametrize(("created", "age"), [
    pytest.param("2026-01-01T00:00:00+00:00", 3600.0, id="since the manifest's created time"),
    pytest.param("2026-01-01T00:00:00", 3600.0, id="a created time without zone is UTC"),
    pytest.param("", None, id="no created time: since the certificate's notBefore"),
])
def test_key_age_is_computed_at_scrape_time(demo_keys_dir: Path, created: str,
                                            age: float | None) -> None:
    key = dataclasses.replace(KeyRing.load(demo_keys_dir).active("ES256"), created=created)
    at = dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC).timestamp()
    collector = metrics.KeyAgeCollector(lambda: [("oidc", key)], clock=lambda: at)
    got = {f.name: f.samples[0] for f in collector.collect()}
    labels = {"use": "oidc", "kid": key.kid, "alg": "ES256", "state": "active"}
    assert got["idp_signing_key_age_seconds"].labels == labels
    assert got["idp_signing_key_age_seconds"].value == (
        age if age is not None else at - key.certificate.not_valid_before_utc.timestamp())
    assert got["idp_signing_key_expiry_seconds"].value == (
        key.certificate.not_valid_after_utc.timestamp() - at)


def test_metrics_count_what_is_issued_and_refused_by_reason(tmp_path: Path,
                                                           demo_keys_dir: Path) -> None:
    """Tokens, SAML assertions and STS credentials issued, and refused with the protocol's
    own error code as the reason, after real requests."""
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
