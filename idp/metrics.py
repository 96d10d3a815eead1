"""Prometheus metrics (``prometheus_client``) and ``GET /metrics``.

Counted: every HTTP answer by endpoint and status, with its latency (one WSGI layer around the
whole app, so the Flask routes and the direct WSGI paths are counted alike); browser sign-ins
by outcome; store and directory failures.  Under ``idp serve`` every worker process writes its
values to files in ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder per instance, set before any
worker starts) and ``/metrics`` adds them up (``prometheus_client`` multiprocess mode).

``prometheus_client`` reads that variable when it is first imported, so this module imports it
only when a metric is first used (:func:`_m`), never at import time.

Key age and certificate expiry are not stored anywhere: a collector computes them when
``/metrics`` is scraped, from the keys the answering process loaded (:class:`KeyAgeCollector`).
Every worker loads the same key files, so whichever worker answers gives the same values, and
they are never added up across workers.

``/metrics`` answers only when ``metrics.enabled``; a client must come from
``metrics.networks`` (default: loopback; as resolved through ``web.trusted_proxies``) or send
``Authorization: Bearer <metrics.token>``.  Anyone else gets 404.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idp.config import MetricsConfig

if TYPE_CHECKING:
    from idp.keys import KeyRing, SigningKey

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"
ENDPOINTS = frozenset({
    "/healthz", "/readyz", "/login", "/logout", "/account", "/saml/metadata", "/saml/sso",
    "/saml/slo", "/saml/idp-initiated", "/.well-known/openid-configuration",
    "/oauth2/authorize", "/oauth2/token", "/oauth2/userinfo", "/oauth2/jwks",
    "/oauth2/introspect", "/oauth2/revoke", "/oauth2/logout", "/oauth2/device_authorization",
    "/device", "/federation/saml", "/sts", "/sts/decide", "/iam", PATH,
})
SIGNIN_OUTCOMES = ("ok", "failed", "locked", "unavailable", "refused")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# (use, key) pairs: the keys a process signs or publishes with, by what they are used for
KeySource = Callable[[], Iterable[tuple[str, "SigningKey"]]]


@dataclass(frozen=True)
class _Metrics:
    requests: Any
    latency: Any
    signins: Any
    store_errors: Any
    directory_errors: Any
    issued: Any
    backend_latency: Any


_built: _Metrics | None = None
_lock = threading.Lock()


def _m() -> _Metrics:
    """The metrics, created on first use (see the module docstring)."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                from prometheus_client import Counter, Histogram

                _built = _Metrics(
                    Counter("idp_http_requests", "HTTP answers by endpoint and status",
                            ["endpoint", "status"]),
                    Histogram("idp_http_request_duration_seconds",
                              "time to answer, by endpoint", ["endpoint"],
                              buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5)),
                    Counter("idp_signins", "browser sign-ins by outcome", ["outcome"]),
                    Counter("idp_store_errors", "store operations that failed", ["op"]),
                    Counter("idp_directory_errors", "directory operations that failed"),
                    Counter("idp_issued", "tokens, SAML assertions and STS credentials: "
                            "issued, or refused with the protocol's error code",
                            ["kind", "outcome"]),
                    Histogram("idp_backend_duration_seconds", "time of one store command or "
                              "directory call (failed ones too)", ["backend", "op"],
                              buckets=(.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5,
                                       1, 2.5)),
                )
    return _built


_children: dict[tuple[str, tuple[str, ...]], Any] = {}
_CHILDREN_MAX = 4096


def _child(name: str, metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: ``labels`` takes a lock and checks its
    arguments on every call, a fifth of what counting an answer cost.  Label values are
    bounded sets (endpoints, statuses, error codes); past :data:`_CHILDREN_MAX` nothing more
    is remembered."""
    key = (name, values)
    child = _children.get(key)
    if child is None:
        child = metric.labels(*values)
        if len(_children) < _CHILDREN_MAX:
            _children[key] = child
    return child


def endpoint(path: str) -> str:
    """The endpoint label of a path: one of :data:`ENDPOINTS`, ``static`` or ``other`` (a
    bounded set, whatever clients send)."""
    if path in ENDPOINTS:
        return path
    return "static" if path.startswith("/static/") else "other"


def signin(outcome: str) -> None:
    """Count a browser sign-in: ``ok``, ``failed``, ``locked``, ``unavailable``, ``refused``."""
    _child("signins", _m().signins, outcome if outcome in SIGNIN_OUTCOMES else "refused").inc()


def store_error(op: str) -> None:
    _child("store_errors", _m().store_errors, op.split(" ", 1)[0]).inc()


def directory_error() -> None:
    _m().directory_errors.inc()


def backend_latency(backend: str, op: str, seconds: float) -> None:
    """Time one call to the store (``op``: the Redis command) or the directory
    (``authenticate``, ``lookup``)."""
    _child("backend_latency", _m().backend_latency, backend, op).observe(seconds)


# audit events that issue (or refuse) something, and what they issue
ISSUING_EVENTS = {
    "OidcToken": "token", "OidcRefresh": "token", "OidcTokenRefused": "token",
    "SamlAssertionIssued": "assertion", "SamlRequestRefused": "assertion",
    "AssumeRoleWithSAML": "sts_credentials", "AssumeRoleWithWebIdentity": "sts_credentials",
    "GetRoleCredentials": "sts_credentials",
}
_REASON = re.compile(r"^[A-Za-z][\w:.-]{0,79}$")


def issued(record: Mapping[str, Any]) -> None:
    """Count an audit record that issued a token, an assertion or credentials, or refused
    to: ``outcome`` is ``issued`` or the error code (the protocol's own, a bounded set)."""
    kind = ISSUING_EVENTS.get(str(record.get("eventName")))
    if kind is None:
        return
    code = record.get("errorCode")
    outcome = "issued" if not code else code if _REASON.match(str(code)) else "other"
    _child("issued", _m().issued, kind, outcome).inc()


def key_uses(keys: KeyRing, audit: KeyRing | None = None) -> list[tuple[str, SigningKey]]:
    """The keys of this process by use: ``saml``, the RS256 keys of the SAML metadata (``next``
    and ``active``); ``oidc``, every key of the JWK Set (RFC 7517 §5); ``audit``, the RS256
    keys of the audit trail's digest signatures, when the trail signs."""
    uses = [("saml", k) for k in keys.published(("next", "active")) if k.alg == "RS256"]
    uses += [("oidc", k) for k in keys.published()]
    if audit is not None:
        uses += [("audit", k) for k in audit.keys if k.alg == "RS256"]
    return uses


def audit_key_ring(sink: Any) -> KeyRing | None:
    """The key ring of the audit sink that signs digests, looked for through wrapping sinks
    (each keeps the one it wraps in ``inner``); ``None`` when nothing signs."""
    while sink is not None:
        ring = getattr(sink, "key_ring", None)
        if ring is not None:
            return ring  # type: ignore[no-any-return]
        sink = getattr(sink, "inner", None)
    return None


def key_created(key: SigningKey) -> float:
    """When a key was made (Unix time): the ``created`` time the key folder's manifest
    records, or, when it records none that parses, the certificate's notBefore."""
    try:
        created = dt.datetime.fromisoformat(key.created)
    except (TypeError, ValueError):
        return key.certificate.not_valid_before_utc.timestamp()
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return created.timestamp()


class KeyAgeCollector:
    """``idp_signing_key_age_seconds`` (now − :func:`key_created`) and
    ``idp_signing_key_expiry_seconds`` (the certificate's notAfter − now, RFC 5280 §4.1.2.5;
    negative once expired), by ``use``, ``kid``, ``alg`` and ``state``, computed when scraped."""

    def __init__(self, keys: KeySource, clock: Callable[[], float] = time.time) -> None:
        self.keys, self.clock = keys, clock

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["use", "kid", "alg", "state"]
        age = GaugeMetricFamily("idp_signing_key_age_seconds", "seconds since the signing key "
                                "was made (as its key folder records)", labels=labels)
        expiry = GaugeMetricFamily("idp_signing_key_expiry_seconds", "seconds until the "
                                   "certificate of the signing key expires (notAfter)",
                                   labels=labels)
        now = self.clock()
        for use, key in self.keys():
            values = [use, key.kid, key.alg, key.state]
            age.add_metric(values, now - key_created(key))
            expiry.add_metric(values, key.certificate.not_valid_after_utc.timestamp() - now)
        yield age
        yield expiry


class CountingSink:
    """An audit sink that counts what :func:`issued` counts, then writes to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, record: Mapping[str, Any]) -> None:
        self.inner.write(record)
        try:
            issued(record)
        except Exception:  # noqa: BLE001 - a metric never fails the request
            pass

    def close(self) -> None:
        self.inner.close()


def exposition(keys: KeySource | None = None) -> bytes:
    """The text format of every metric, summed over the worker processes when there are,
    then the key ages of ``keys`` as this process sees them (never summed)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    _m()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = bytes(generate_latest(registry))
    else:
        text = bytes(generate_latest(REGISTRY))
    if keys is not None:
        local = CollectorRegistry()
        local.register(KeyAgeCollector(keys))
        text += bytes(generate_latest(local))
    return text


class MetricsMiddleware:
    """Counts and times every answer; serves :data:`PATH` to allowed clients."""

    def __init__(self, app: WsgiApp, config: MetricsConfig, keys: KeySource | None = None
                 ) -> None:
        self.app = app
        self.keys = keys
        self.token = config.token.encode() if config.token else None
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.networks]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        label = endpoint(path)
        status: list[str] = []

        def recording(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status.append(code.split(" ", 1)[0])
            return start_response(code, headers, *exc)

        body: Iterable[bytes]
        if path == PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body = self._scrape(environ, recording)
        else:
            body = self.app(environ, recording)
        m = _m()
        _child("requests", m.requests, label, status[0] if status else "000").inc()
        _child("latency", m.latency, label).observe(time.perf_counter() - started)
        return body

    def _allowed(self, environ: dict[str, Any]) -> bool:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if self.token is not None and auth[:7].lower() == "bearer ":
            return hmac.compare_digest(auth[7:].strip().encode(), self.token)
        try:
            ip = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def _scrape(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if not self._allowed(environ):
            body = b"not found\n"
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(body)))])
            return [body]
        body = exposition(self.keys)
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                  ("Cache-Control", "no-store"),
                                  ("Content-Length", str(len(body)))])
        return [body]


def install(app: Any, config: MetricsConfig, keys: KeySource | None = None) -> None:
    """Wrap a Flask app's WSGI callable (inside ProxyFix when there is one, so client
    addresses are the ones the app sees); ``keys``: whose age ``/metrics`` shows."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    if isinstance(app.wsgi_app, ProxyFix):
        app.wsgi_app.app = MetricsMiddleware(app.wsgi_app.app, config, keys)
    else:
        app.wsgi_app = MetricsMiddleware(app.wsgi_app, config, keys)
