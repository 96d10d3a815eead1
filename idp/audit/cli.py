"""``idp audit``: verify the trail, manage its signing keys, look events up, report."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from idp.config import AuditConfig, Config, load_config
from idp.errors import ConfigError

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(value: str, now: float | None = None) -> float:
    """``24h``/``30m``/``7d`` ago, or an ISO 8601 time (naive = UTC) → Unix time."""
    now = time.time() if now is None else now
    m = _RELATIVE.match(value.strip())
    if m:
        return now - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"`{value}` is neither a time nor a duration like 24h") from exc
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"{path}: {len(exc.problems)} problem(s)", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)


def trail_config(path: str) -> AuditConfig:
    config = load(path)
    if config.audit.sink != "trail":
        raise click.ClickException("audit.sink is not `trail`: there is no trail to read")
    return config.audit


def admin_audit(config: Config, event: str, **fields: Any) -> None:
    from idp.audit.events import admin_event

    admin_event(config, event, **fields)


_config_option = click.option("--config", "config_path", envvar="IDP_CONFIG", required=True,
                              type=click.Path(dir_okay=False), help="YAML configuration file")


@click.group("audit")
def audit() -> None:
    """The audit trail: verify, keys, lookup, report."""


@audit.command("verify")
@_config_option
@click.option("--from", "start", help="first time to check (ISO 8601 or 24h, 7d…)")
@click.option("--to", "end", help="last time to check")
@click.option("--keys", "key_dirs", multiple=True,
              help="folder of <kid>.pem audit public keys, or the URL of a server's "
              "/audit/keys (default: the local archive of audit keys)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True, help="print only what did not verify")
def verify_cmd(config_path: str, start: str | None, end: str | None, key_dirs: tuple[str, ...],
               as_json: bool, quiet: bool) -> None:
    """Validate every log file and digest of the trail against the signed digest chains.
    Exit status 0 when everything held, 1 when anything did not."""
    import tempfile

    from idp.audit.verify import verify

    cfg = trail_config(config_path)
    with tempfile.TemporaryDirectory(prefix="idp-audit-keys-") as fetched:
        folders = [_fetch_keys(k, Path(fetched) / str(i)) if k.startswith(("http://", "https://"))
                   else Path(k) for i, k in enumerate(key_dirs)] or [cfg.keys_dir / "public"]
        findings = verify(cfg.dir, folders, start=parse_when(start) if start else None,
                          end=parse_when(end) if end else None,
                          grace=2.0 * cfg.roll_seconds + 60)
    bad = [f for f in findings if not f.ok]
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=1))
    else:
        for f in findings:
            if not (quiet and f.ok):
                click.echo(f"{f.status:10} {f.path}" + (f"  ({f.detail})" if f.detail else ""))
        digests = sum(1 for f in findings if f.path.startswith("digests/"))
        click.echo(f"{len(findings)} file(s) checked ({digests} digest(s)); "
                   + (f"{len(bad)} did not verify" if bad else "all valid"), err=True)
    sys.exit(1 if bad else 0)


def _fetch_keys(url: str, folder: Path) -> Path:
    """Save the ``PublicKeyList`` of a server's ``/audit/keys`` as ``<Fingerprint>.pem``."""
    import urllib.request

    folder.mkdir(parents=True)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - an operator's URL
            doc = json.load(resp)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the audit keys at `{url}`: {exc}") from exc
    for key in doc.get("PublicKeyList", []):
        fingerprint = str(key.get("Fingerprint", ""))
        if re.fullmatch(r"[A-Za-z0-9_-]{1,128}", fingerprint):
            (folder / f"{fingerprint}.pem").write_text(str(key.get("Pem", "")))
    return folder


@audit.group("keys")
def keys_group() -> None:
    """The audit signing keys (apart from the SAML/OIDC keys)."""


@keys_group.command("init")
@_config_option
def keys_init(config_path: str) -> None:
    """Create the audit keys (an active and a next key) and publish their public keys."""
    from idp.audit.trail import load_audit_keys
    from idp.keys import init_keys

    config = load(config_path)
    created = init_keys(config.audit.keys_dir, common_name="idp-audit")
    load_audit_keys(config.audit.keys_dir)
    if created:
        admin_audit(config, "CreateAuditKeys")
    click.echo("created" if created else "audit keys already exist")


@keys_group.command("rotate")
@_config_option
def keys_rotate(config_path: str) -> None:
    """Rotate the audit keys (next → active); every public key stays published."""
    from idp.audit.trail import load_audit_keys
    from idp.keys import KeyRing, rotate_keys

    config = load(config_path)
    entries = rotate_keys(config.audit.keys_dir, common_name="idp-audit")
    load_audit_keys(config.audit.keys_dir)
    active = KeyRing.load(config.audit.keys_dir).active("RS256").kid
    admin_audit(config, "RotateAuditKeys", additional={"activeKeyId": active})
    for e in entries:
        click.echo(f"{e['state']:8} {e['alg']}  {e['kid']}")
    click.echo("restart every idp process so that they sign with the new key", err=True)


@keys_group.command("list")
@_config_option
def keys_list(config_path: str) -> None:
    """Every published audit public key (``<keys>/public``), the active one marked."""
    from idp.keys import list_keys

    config = load(config_path)
    states = {e["kid"]: e["state"] for e in list_keys(config.audit.keys_dir)}
    public = config.audit.keys_dir / "public"
    for pem in sorted(public.glob("*.pem")) if public.is_dir() else []:
        click.echo(f"{states.get(pem.stem, 'archived'):8} {pem.stem}")


@audit.command("lookup")
@_config_option
@click.option("--user", help="userName or role session name (CloudTrail's Username)")
@click.option("--event", "event_name", help="eventName, e.g. AssumeRoleWithSAML")
@click.option("--access-key-id", help="the access key that signed, or was issued")
@click.option("--role", "role_arn", help="a role ARN the event names as a resource")
@click.option("--since", default="24h", show_default=True, help="24h, 7d… or an ISO time")
@click.option("--until", help="last time (default: now)")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="one CloudTrail record a line")
def lookup_cmd(config_path: str, user: str | None, event_name: str | None,
               access_key_id: str | None, role_arn: str | None, since: str, until: str | None,
               limit: int, as_json: bool) -> None:
    """Events of the trail, newest first, every given filter applied."""
    from idp.audit.index import AuditIndex, Query

    cfg = trail_config(config_path)
    attrs = [(k, v) for k, v in (("Username", user), ("EventName", event_name),
                                 ("AccessKeyId", access_key_id), ("ResourceName", role_arn))
             if v]
    index = AuditIndex(cfg.dir, retention_days=cfg.retention_days)
    try:
        events, _ = index.lookup(Query(attrs, parse_when(since),
                                       parse_when(until) if until else None, limit))
    finally:
        index.close()
    for e in events:
        if as_json:
            click.echo(json.dumps(e, separators=(",", ":"), sort_keys=True))
            continue
        who = (e.get("userIdentity") or {}).get("userName") or "-"
        outcome = e.get("errorCode") or "ok"
        click.echo(f"{e['eventTime']}  {e['eventName']:28} {who:40} "
                   f"{e.get('sourceIPAddress') or '-':15} {outcome}")


@audit.command("report")
@_config_option
@click.option("--since", default="24h", show_default=True, help="24h, 7d… or an ISO time")
@click.option("--until", help="last time (default: now)")
@click.option("--json", "as_json", is_flag=True)
def report_cmd(config_path: str, since: str, until: str | None, as_json: bool) -> None:
    """Failed sign-ins, lockouts, spraying, stuffing, STS refusals, role assumptions, first
    uses of a role and administrative actions over a period."""
    from idp.audit.alerts import ASSUME_ACTIONS
    from idp.audit.index import AuditIndex
    from idp.audit.report import Thresholds, build_report, render

    cfg = trail_config(config_path)
    start = parse_when(since)
    end = parse_when(until) if until else None
    rules = {r.kind: r.threshold for r in cfg.alerts.rules}
    thresholds = Thresholds(spray_accounts=rules.get("spray", 10),
                            stuffing_ips=rules.get("stuffing", 5))
    index = AuditIndex(cfg.dir, retention_days=cfg.retention_days)
    try:
        earlier = index.events(0, start - 1, names=sorted(ASSUME_ACTIONS))
        rep = build_report(index.events(start, end), earlier, thresholds)
    finally:
        index.close()
    click.echo(json.dumps(rep.to_json(), indent=1) if as_json else render(rep))
