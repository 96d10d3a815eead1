"""The MFA service: enrol, verify, rename, remove, reset; every step audited.

Events (``eventType`` ``AwsConsoleSignIn``): ``MfaEnrol``, ``MfaVerify`` (``errorCode``
``InvalidCode``, ``ReplayedCode`` or ``TooManyAttempts`` when refused), ``MfaLockout``,
``MfaRename``, ``MfaRemove``, ``MfaRecoveryCodes`` (regenerated), ``MfaReset`` (by an admin).
Codes and secrets never reach a record.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from idp.audit import Auditor, RequestInfo
from idp.config import Config, MfaConfig, MfaSnsConfig
from idp.errors import IdpError
from idp.mfa import recovery, totp
from idp.mfa.codes import SendRefused, SentCodes
from idp.mfa.crypto import SecretBox
from idp.mfa.limits import FailureCounters
from idp.mfa.model import AMR, Enrolment, Factor
from idp.mfa.passkeys import PasskeyRefused, Passkeys
from idp.mfa.senders import Sender, SmtpSender, SnsSender, WebhookSender
from idp.mfa.storage import EnrolmentStore
from idp.store import Store, get_json, key, new_id, set_json

PENDING_TTL = 600
LAST_USED_TTL = 400 * 86400
MAX_NAME = 64
MAX_FACTORS = 10


class MfaError(IdpError):
    """A second factor refused: one message whatever the cause."""

    code = "invalid_code"
    status = 401
    description = "the code is not valid"


class MfaLocked(MfaError):
    code = "too_many_attempts"
    status = 429
    description = "too many wrong codes, try again later"

    def __init__(self, retry_after: int, *, debug: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(debug=debug)


class SendLimited(MfaLocked):
    description = "too many codes sent, try again later"


DESTINATION = {"email": re.compile(r"^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{1,63}$"),
               "sms": re.compile(r"^\+[1-9][0-9]{6,14}$")}
"""Where a code may go: an email address, a phone number in E.164 (ITU-T E.164)."""
KIND_NAME = {"totp": "Authenticator", "email": "Email", "sms": "Phone", "webauthn": "Passkey"}


def mask(destination: str) -> str:
    """Enough of a destination to recognise it: ``a…e@example.org``, ``+33…78``."""
    if "@" in destination:
        local, domain = destination.split("@", 1)
        return f"{local[:1]}…{local[-1:]}@{domain}" if len(local) > 2 else f"…@{domain}"
    return f"{destination[:3]}…{destination[-2:]}"


@dataclass(frozen=True)
class Verified:
    """A second factor that was just used: its kind, ID, RFC 8176 ``amr`` value and time."""

    kind: str
    factor_id: str
    amr: str
    at: int


@dataclass(frozen=True)
class PendingTotp:
    """A TOTP enrolment waiting for its first code: shown once as secret, URI and QR code."""

    id: str
    secret: str
    uri: str
    qr_svg: str


def _h(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def clean_name(name: str, default: str) -> str:
    """A factor's display name: printable, at most 64 characters."""
    name = "".join(c for c in name.strip() if c.isprintable())[:MAX_NAME]
    return name or default


class MfaService:
    def __init__(self, config: MfaConfig, enrolments: EnrolmentStore, store: Store,
                 auditor: Auditor, box: SecretBox,
                 clock: Callable[[], float] = time.time,
                 senders: dict[str, Sender] | None = None, mac_key: bytes = b"") -> None:
        self.config = config
        self.enrolments = enrolments
        self.store = store
        self.auditor = auditor
        self.box = box
        self.clock = clock
        self.counters = FailureCounters(store, config)
        self.senders = senders or {}
        self.passkeys: Passkeys | None = None  # set by open_service (needs the issuer)
        self.codes = SentCodes(store, config, mac_key or hashlib.sha256(
            b"mfa-codes|" + box.current_kid.encode()).digest())

    # -- reading --------------------------------------------------------------------------

    def enrolment(self, username: str) -> Enrolment:
        return self.enrolments.get(username)

    def methods(self, enrolment: Enrolment) -> list[str]:
        """The kinds a person may use at the second step, in the order the page offers them."""
        kinds: list[str] = [k for k in ("webauthn", "totp", "email", "sms")
                             if k in self.config.factors and enrolment.of_kind(k)
                             and (k == "totp" or k in self.senders
                                  or (k == "webauthn" and self.passkeys is not None))]
        if enrolment.recovery and "recovery" in self.config.factors:
            kinds.append("recovery")
        return kinds

    # -- TOTP enrolment (RFC 6238) --------------------------------------------------------

    def begin_totp(self, username: str) -> PendingTotp:
        """A new secret, kept sealed in the store until its first code confirms it."""
        if "totp" not in self.config.factors:
            raise MfaError("authenticator apps are not enabled", code="invalid_request",
                           status=400)
        secret = totp.new_secret()
        pid = new_id()
        set_json(self.store, self._pending_key(username, pid),
                 {"secret": self.box.seal(secret.encode(), f"pending:{pid}")}, PENDING_TTL)
        uri = totp.provisioning_uri(secret, username, self.config.issuer_name)
        return PendingTotp(pid, secret, uri, totp.qr_svg(uri))

    def pending_totp(self, username: str, pending_id: str) -> PendingTotp | None:
        """A pending enrolment shown again (after a wrong first code), or ``None``."""
        raw = get_json(self.store, self._pending_key(username, pending_id[:64]))
        if not isinstance(raw, dict):
            return None
        secret = self.box.open(raw["secret"], f"pending:{pending_id}").decode()
        uri = totp.provisioning_uri(secret, username, self.config.issuer_name)
        return PendingTotp(pending_id, secret, uri, totp.qr_svg(uri))

    def confirm_totp(self, username: str, pending_id: str, code: str, name: str,
                     request: RequestInfo) -> Factor:
        """Enrol the pending secret if ``code`` is its current code (which is then spent)."""
        raw = get_json(self.store, self._pending_key(username, pending_id[:64]))
        if not isinstance(raw, dict):
            raise MfaError("the enrolment expired, start again", code="expired", status=400)
        secret = self.box.open(raw["secret"], f"pending:{pending_id}").decode()
        now = self.clock()
        step = totp.match(secret, code.strip(), now)
        fid = new_id()
        if step is None or not self._spend_step(username, f"pending:{pending_id}", step, now):
            self._audit("MfaEnrol", username, request, error="InvalidCode",
                        extra={"kind": "totp"})
            raise MfaError(debug="first code did not match")
        # the enrolled factor's steps up to this one are spent too (same secret)
        self._spend_step(username, fid, step, now)

        def add(e: Enrolment) -> Factor:
            if len(e.factors) >= MAX_FACTORS:
                raise MfaError("too many factors", code="invalid_request", status=400)
            n = len(e.of_kind("totp")) + 1
            f = Factor(id=fid, kind="totp", created=int(now),
                       name=clean_name(name, f"Authenticator {n}"),
                       secret=self.box.seal(secret.encode(), f"{username}:{fid}"))
            e.factors.append(f)
            return f

        factor = self.enrolments.update(username, add)
        self.store.delete(self._pending_key(username, pending_id))
        self._audit("MfaEnrol", username, request, extra={"kind": "totp", "factorId": fid})
        return factor

    def enrol_totp_secret(self, username: str, secret: str, name: str,
                          request: RequestInfo) -> Factor:
        """Enrol a known secret without a first code (the demo's fixed secret, admin tools)."""
        fid = new_id()

        def add(e: Enrolment) -> Factor:
            f = Factor(id=fid, kind="totp", name=clean_name(name, "Authenticator"),
                       created=int(self.clock()),
                       secret=self.box.seal(secret.encode(), f"{username}:{fid}"))
            e.factors.append(f)
            return f

        factor = self.enrolments.update(username, add)
        self._audit("MfaEnrol", username, request, extra={"kind": "totp", "factorId": fid})
        return factor

    # -- verification ---------------------------------------------------------------------

    def verify(self, username: str, kind: str, code: str, request: RequestInfo) -> Verified:
        """Check a code of the given kind against the person's factors of that kind.

        Raise :class:`MfaLocked` while every such factor is locked, :class:`MfaError` for a
        wrong or replayed code (counted, see :mod:`idp.mfa.limits`)."""
        enrolment = self.enrolments.get(username)
        if kind not in self.methods(enrolment):
            self._audit("MfaVerify", username, request, error="InvalidCode",
                        extra={"kind": kind[:16]})
            raise MfaError(debug=f"no usable factor of kind {kind[:16]!r}")
        if kind == "recovery":
            return self._verify_recovery(username, code, request)
        if kind in ("email", "sms"):
            return self._verify_sent(username, enrolment, kind, code, request)
        if kind == "webauthn":
            return self._verify_passkey(username, enrolment, code, request)
        return self._verify_totp(username, enrolment, code, request)

    # -- passkeys (WebAuthn) ---------------------------------------------------------------

    def _pk(self) -> Passkeys:
        if self.passkeys is None or "webauthn" not in self.config.factors:
            raise MfaError("passkeys are not enabled", code="invalid_request", status=400)
        return self.passkeys

    def begin_passkey(self, username: str) -> tuple[str, str]:
        """A pending registration: its ID and the creation options (JSON)."""
        pk = self._pk()
        pid = new_id()
        handle = hashlib.sha256(b"webauthn-user|" + username.casefold().encode()).digest()[:16]
        existing = [str(f.data["credential_id"])
                    for f in self.enrolments.get(username).of_kind("webauthn")]
        return pid, pk.registration_options(_h(f"reg\0{username.casefold()}\0{pid}"),
                                            username, handle, existing)

    def confirm_passkey(self, username: str, pending_id: str, credential_json: str,
                        name: str, request: RequestInfo) -> Factor:
        try:
            new = self._pk().register(_h(f"reg\0{username.casefold()}\0{pending_id}"),
                                      credential_json)
        except PasskeyRefused as exc:
            self._audit("MfaEnrol", username, request, error="InvalidCredential",
                        extra={"kind": "webauthn"})
            raise MfaError("the passkey was not accepted", debug=str(exc)) from None
        fid = new_id()

        def add(e: Enrolment) -> Factor:
            if len(e.factors) >= MAX_FACTORS:
                raise MfaError("too many factors", code="invalid_request", status=400)
            n = len(e.of_kind("webauthn")) + 1
            f = Factor(id=fid, kind="webauthn", created=int(self.clock()),
                       name=clean_name(name, f"Passkey {n}"),
                       data={"credential_id": new.credential_id, "public_key": new.public_key,
                             "sign_count": new.sign_count, "amr": new.amr})
            e.factors.append(f)
            return f

        factor = self.enrolments.update(username, add)
        self._audit("MfaEnrol", username, request, extra={"kind": "webauthn", "factorId": fid})
        return factor

    def passkey_options(self, username: str) -> str:
        """Request options (JSON) for the person's passkeys; the challenge is kept."""
        ids = [str(f.data["credential_id"])
               for f in self.enrolments.get(username).of_kind("webauthn")]
        return self._pk().authentication_options(_h(f"auth\0{username.casefold()}"), ids)

    def _verify_passkey(self, username: str, enrolment: Enrolment, credential_json: str,
                        request: RequestInfo) -> Verified:
        factors = enrolment.of_kind("webauthn")
        stored = {str(f.data["credential_id"]): f.data for f in factors}
        try:
            cred_id, count = self._pk().authenticate(
                _h(f"auth\0{username.casefold()}"), credential_json, stored)
        except PasskeyRefused as exc:
            self._audit("MfaVerify", username, request, error="InvalidCredential",
                        extra={"kind": "webauthn", "reason": str(exc)[:200]})
            raise MfaError(debug=str(exc)) from None
        f = next(x for x in factors if x.data["credential_id"] == cred_id)

        def bump(e: Enrolment) -> None:
            g = e.find(f.id)
            if g is not None:
                g.data["sign_count"] = count

        self.enrolments.update(username, bump)
        now = int(self.clock())
        self._touch(username, f.id, now)
        self._audit("MfaVerify", username, request, extra={"kind": "webauthn",
                                                           "factorId": f.id})
        return Verified("webauthn", f.id, str(f.data.get("amr", "hwk")), now)

    # -- codes sent by email or text message ----------------------------------------------

    def begin_sent(self, username: str, kind: str, destination: str,
                   request: RequestInfo) -> str:
        """Send a code to a new email address or phone number; the pending enrolment's ID."""
        destination = destination.strip()
        if kind not in self.senders or kind not in self.config.factors:
            raise MfaError(f"`{kind[:16]}` codes are not enabled", code="invalid_request",
                           status=400)
        if not DESTINATION[kind].match(destination):
            raise MfaError("not an email address" if kind == "email" else
                           "not a phone number in international form (+33…)",
                           code="invalid_request", status=400)
        pid = new_id()
        set_json(self.store, self._pending_key(username, pid),
                 {"kind": kind, "dest": self.box.seal(destination.encode(), f"pending:{pid}")},
                 PENDING_TTL)
        self._send(username, f"enrol:{pid}", kind, destination, f"pending:{pid}", request)
        return pid

    def pending_sent(self, username: str, pending_id: str) -> tuple[str, str] | None:
        """The kind and masked destination of a pending enrolment, or ``None``."""
        raw = get_json(self.store, self._pending_key(username, pending_id[:64]))
        if not isinstance(raw, dict) or "kind" not in raw:
            return None
        dest = self.box.open(raw["dest"], f"pending:{pending_id}").decode()
        return str(raw["kind"]), mask(dest)

    def confirm_sent(self, username: str, pending_id: str, code: str, name: str,
                     request: RequestInfo) -> Factor:
        raw = get_json(self.store, self._pending_key(username, pending_id[:64]))
        if not isinstance(raw, dict) or "kind" not in raw:
            raise MfaError("the enrolment expired, start again", code="expired", status=400)
        kind = str(raw["kind"])
        if self.codes.check(username, f"enrol:{pending_id}", code) != f"pending:{pending_id}":
            self._audit("MfaEnrol", username, request, error="InvalidCode",
                        extra={"kind": kind})
            raise MfaError(debug="enrolment code did not match")
        dest = self.box.open(raw["dest"], f"pending:{pending_id}")
        fid = new_id()

        def add(e: Enrolment) -> Factor:
            if len(e.factors) >= MAX_FACTORS:
                raise MfaError("too many factors", code="invalid_request", status=400)
            f = Factor(id=fid, kind=kind, created=int(self.clock()),
                       name=clean_name(name, KIND_NAME[kind]),
                       secret=self.box.seal(dest, f"{username}:{fid}"))
            e.factors.append(f)
            return f

        factor = self.enrolments.update(username, add)
        self.store.delete(self._pending_key(username, pending_id))
        self._audit("MfaEnrol", username, request, extra={"kind": kind, "factorId": fid})
        return factor

    def send_code(self, username: str, kind: str, request: RequestInfo) -> str:
        """Send a sign-in code to the person's factor of that kind; its masked destination."""
        enrolment = self.enrolments.get(username)
        if kind not in ("email", "sms") or kind not in self.methods(enrolment):
            raise MfaError(debug=f"no factor of kind {kind[:16]!r} to send to")
        f = enrolment.of_kind(kind)[0]
        wait = self.counters.locked_for(username, f.id, kind)
        if wait:
            raise MfaLocked(wait)
        dest = self.box.open(f.secret, f"{username}:{f.id}").decode()
        self._send(username, kind, kind, dest, f.id, request)
        return mask(dest)

    def _send(self, username: str, purpose: str, kind: str, destination: str, factor_id: str,
              request: RequestInfo) -> None:
        try:
            self.codes.allow_send(username, purpose, request.source_ip)
        except SendRefused as exc:
            self._audit("MfaCodeSent", username, request, error="TooManyCodes",
                        extra={"kind": kind, "reason": exc.reason})
            raise SendLimited(exc.retry_after, debug=exc.reason) from None
        code = self.codes.issue(username, purpose, factor_id)
        minutes = max(1, self.config.code_ttl // 60)
        self.senders[kind].send(destination, f"Your {self.config.issuer_name} sign-in code is "
                                             f"{code}. It works for {minutes} minutes.")
        self._audit("MfaCodeSent", username, request, extra={"kind": kind})

    def _verify_sent(self, username: str, enrolment: Enrolment, kind: str, code: str,
                     request: RequestInfo) -> Verified:
        f = enrolment.of_kind(kind)[0]
        wait = self.counters.locked_for(username, f.id, kind)
        if wait:
            self._audit("MfaVerify", username, request, error="TooManyAttempts",
                        extra={"kind": kind})
            raise MfaLocked(wait)
        fid = self.codes.check(username, kind, code[:16])
        if fid is None or enrolment.find(fid) is None:
            self._fail(username, f, request, "InvalidCode")
        now = int(self.clock())
        self.counters.clear(username, f.id)
        self._touch(username, fid, now)
        self._audit("MfaVerify", username, request, extra={"kind": kind, "factorId": fid})
        return Verified(kind, fid, AMR[kind], now)

    def _verify_totp(self, username: str, enrolment: Enrolment, code: str,
                     request: RequestInfo) -> Verified:
        now = self.clock()
        factors = enrolment.of_kind("totp")
        open_factors = [f for f in factors if not self.counters.locked_for(username, f.id,
                                                                          "totp")]
        if not open_factors:
            wait = max(self.counters.locked_for(username, f.id, "totp") for f in factors)
            self._audit("MfaVerify", username, request, error="TooManyAttempts",
                        extra={"kind": "totp"})
            raise MfaLocked(wait)
        code = code.strip().replace(" ", "")
        for f in open_factors:
            secret = self.box.open(f.secret, f"{username}:{f.id}").decode()
            step = totp.match(secret, code, now)
            if step is None:
                continue
            if not self._spend_step(username, f.id, step, now):
                self._fail(username, f, request, "ReplayedCode")
            self.counters.clear(username, f.id)
            self._touch(username, f.id, int(now))
            self._audit("MfaVerify", username, request,
                        extra={"kind": "totp", "factorId": f.id})
            return Verified("totp", f.id, AMR["totp"], int(now))
        self._fail(username, open_factors[0], request, "InvalidCode")

    def _verify_recovery(self, username: str, code: str, request: RequestInfo) -> Verified:
        now = int(self.clock())

        def spend(e: Enrolment) -> bool:
            i = recovery.find(e.recovery, code)
            if i is None:
                return False
            del e.recovery[i]
            return True

        if not self.enrolments.update(username, spend):
            self._audit("MfaVerify", username, request, error="InvalidCode",
                        extra={"kind": "recovery"})
            raise MfaError(debug="recovery code did not match")
        left = len(self.enrolments.get(username).recovery)
        self._audit("MfaVerify", username, request,
                    extra={"kind": "recovery", "recoveryCodesLeft": left})
        return Verified("recovery", "recovery", AMR["recovery"], now)

    def _fail(self, username: str, factor: Factor, request: RequestInfo, why: str) -> NoReturn:
        locked = self.counters.record(username, factor.id, factor.kind)
        self._audit("MfaVerify", username, request, error=why,
                    extra={"kind": factor.kind, "factorId": factor.id})
        if locked:
            self._audit("MfaLockout", username, request,
                        extra={"kind": factor.kind, "factorId": factor.id,
                               "window": self.config.lockout_window})
        raise MfaError(debug=why)

    def _spend_step(self, username: str, factor_id: str, step: int, now: float) -> bool:
        """Remember a TOTP step as used until it can no longer match (SET NX)."""
        ttl = max(1, (step + totp.WINDOW + 1) * totp.STEP - int(now) + 1)
        k = key("totpused", _h(f"{username.casefold()}\0{factor_id}\0{step}"))
        return self.store.add(k, b"1", ttl)

    def _touch(self, username: str, factor_id: str, when: int) -> None:
        """Remember when a factor was last used (in the store: informational, so no file
        write and ``fsync`` per sign-in), and reseal its secret if an older key sealed it."""
        self.store.set(self._last_key(username, factor_id), str(when).encode(), LAST_USED_TTL)
        f = self.enrolments.get(username).find(factor_id)
        if f is None or not f.secret or self.box.is_current(f.secret):
            return

        def reseal(e: Enrolment) -> None:
            g = e.find(factor_id)
            if g is not None and not self.box.is_current(g.secret):
                aad = f"{username}:{g.id}"
                g.secret = self.box.seal(self.box.open(g.secret, aad), aad)

        self.enrolments.update(username, reseal)

    def last_used(self, username: str, factor: Factor) -> int | None:
        """When the factor was last used to sign in (``None``: not in the last 400 days)."""
        raw = self.store.get(self._last_key(username, factor.id))
        return int(raw) if raw is not None else factor.last_used

    def _last_key(self, username: str, factor_id: str) -> str:
        return key("mfalast", _h(f"{username.casefold()}\0{factor_id}"))

    # -- management -----------------------------------------------------------------------

    def regenerate_recovery(self, username: str, request: RequestInfo) -> list[str]:
        """Ten new codes (shown once); the old ones stop working."""
        codes = recovery.generate()
        hashes = [recovery.hash_code(c) for c in codes]

        def put(e: Enrolment) -> None:
            e.recovery = hashes
            e.recovery_created = int(self.clock())

        self.enrolments.update(username, put)
        self._audit("MfaRecoveryCodes", username, request, extra={"count": len(codes)})
        return codes

    def rename(self, username: str, factor_id: str, name: str, request: RequestInfo) -> None:
        def change(e: Enrolment) -> None:
            f = e.find(factor_id)
            if f is None:
                raise MfaError("no such factor", code="not_found", status=404)
            f.name = clean_name(name, f.name)

        self.enrolments.update(username, change)
        self._audit("MfaRename", username, request, extra={"factorId": factor_id})

    def remove(self, username: str, factor_id: str, request: RequestInfo) -> None:
        """Remove a factor (the caller checks the person used a second factor just now)."""
        def drop(e: Enrolment) -> Factor:
            f = e.find(factor_id)
            if f is None:
                raise MfaError("no such factor", code="not_found", status=404)
            e.factors.remove(f)
            if not e.factors:
                e.recovery = []  # recovery codes stand in for a factor: none left to stand in
            return f

        f = self.enrolments.update(username, drop)
        self._audit("MfaRemove", username, request,
                    extra={"kind": f.kind, "factorId": factor_id})

    def reset(self, username: str, request: RequestInfo, *, actor: str) -> int:
        """Remove every factor and recovery code of a person (admin); the count removed."""
        def clear(e: Enrolment) -> list[str]:
            ids = [f.id for f in e.factors]
            e.factors, e.recovery = [], []
            return ids

        ids = self.enrolments.update(username, clear)
        self.counters.reset(username, ids)
        self._audit("MfaReset", username, request, extra={"factorsRemoved": len(ids),
                                                          "admin": actor})
        return len(ids)

    def rekey(self) -> int:
        """Seal every secret under the first key (after a rotation); the count rewritten."""
        count = 0
        for e in list(self.enrolments.all()):
            def reseal(en: Enrolment) -> int:
                n = 0
                for f in en.factors:
                    if f.secret and not self.box.is_current(f.secret):
                        aad = f"{en.username}:{f.id}"
                        f.secret = self.box.seal(self.box.open(f.secret, aad), aad)
                        n += 1
                return n

            count += self.enrolments.update(e.username, reseal)
        return count

    # -- helpers --------------------------------------------------------------------------

    def _pending_key(self, username: str, pid: str) -> str:
        return key("mfapend", _h(f"{username.casefold()}\0{pid}"))

    def _audit(self, event: str, username: str, request: RequestInfo, *,
               error: str | None = None, extra: dict[str, object] | None = None) -> None:
        self.auditor.emit(event, request, user=username, event_type="AwsConsoleSignIn",
                          error_code=error,
                          error_message="Second factor refused" if error else None,
                          additional=extra)


def enrolments_folder(config: Config) -> Path:
    """``mfa.enrolments_dir``, by default ``mfa/`` beside the users file (file directory) or
    beside the keys folder (LDAP)."""
    if config.mfa.enrolments_dir is not None:
        return config.mfa.enrolments_dir
    if config.directory.file is not None:
        return config.directory.file.path.parent / "mfa"
    return config.keys.dir.parent / "mfa"


def open_service(config: Config, store: Store, auditor: Auditor) -> MfaService:
    """The MFA service a config names; secrets sealed with ``mfa.encryption_keys`` (default: a
    key derived from ``secret_key``)."""
    box = SecretBox(config.mfa.encryption_keys or [config.secret_key])
    mac_key = hashlib.sha256(b"mfa-codes|" + config.secret_key.encode()).digest()
    svc = MfaService(config.mfa, EnrolmentStore(enrolments_folder(config)), store, auditor,
                     box, senders=open_senders(config.mfa), mac_key=mac_key)
    if "webauthn" in config.mfa.factors:
        svc.passkeys = Passkeys(store, config.issuer, config.mfa.issuer_name)
    return svc


def open_senders(config: MfaConfig) -> dict[str, Sender]:
    """The senders of the enabled code factors (see :mod:`idp.mfa.senders`)."""
    senders: dict[str, Sender] = {}
    if "email" in config.factors and config.email is not None:
        senders["email"] = SmtpSender(config.email)
    if "sms" in config.factors and config.text is not None:
        t = config.text
        senders["sms"] = (SnsSender(t.sns) if t.sender == "sns" and t.sns is not None
                          else WebhookSender(t.webhook) if t.webhook is not None
                          else SnsSender(MfaSnsConfig()))
    return senders
