"""Virtual MFA devices of IAM users (``mfa.devices``): ``SerialNumber`` + ``TokenCode`` of
``GetSessionToken`` and ``AssumeRole`` (STS API Reference).

A device (``arn:aws:iam::ACCT:mfa/NAME``) belongs to one long-term access key; its TOTP code
(RFC 6238, ±1 step) is accepted once (the step is spent in the store), and wrong codes count
against the device like any other factor (:mod:`idp.mfa.limits`), each refusal audited.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import NoReturn

from idp.audit import Auditor, RequestInfo
from idp.config import MfaConfig
from idp.mfa import totp
from idp.mfa.limits import FailureCounters
from idp.store import Store, key

INVALID = "MultiFactorAuthentication failed with invalid MFA one time pass code. "


class DeviceRefused(Exception):
    """The code is wrong, replayed, locked out, or the device is not the key's."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class VirtualDevices:
    def __init__(self, config: MfaConfig, store: Store, auditor: Auditor,
                 clock: Callable[[], float] = time.time) -> None:
        self.devices = {d.serial_number: d for d in config.devices}
        self.store = store
        self.auditor = auditor
        self.clock = clock
        self.counters = FailureCounters(store, config)

    def verify(self, serial: str, access_key_id: str, code: str) -> int:
        """The time the code was accepted; :class:`DeviceRefused` otherwise."""
        now = self.clock()
        device = self.devices.get(serial)
        owner = f"device:{serial}"
        if device is None or device.access_key_id != access_key_id:
            self._audit(serial, access_key_id, "InvalidDevice")
            raise DeviceRefused("unknown device or not this key's")
        if self.counters.locked_for(owner, serial, "totp"):
            self._audit(serial, access_key_id, "TooManyAttempts")
            raise DeviceRefused("device locked out")
        step = totp.match(device.secret, code, now)
        if step is None:
            self._fail(owner, serial, access_key_id, "InvalidCode")
        ttl = max(1, (step + totp.WINDOW + 1) * totp.STEP - int(now) + 1)
        marker = key("totpused", hashlib.sha256(f"{serial}\0{step}".encode()).hexdigest()[:32])
        if not self.store.add(marker, b"1", ttl):
            self._fail(owner, serial, access_key_id, "ReplayedCode")
        self.counters.clear(owner, serial)
        self._audit(serial, access_key_id, None)
        return int(now)

    def _fail(self, owner: str, serial: str, access_key_id: str, why: str) -> NoReturn:
        locked = self.counters.record(owner, serial, "totp")
        self._audit(serial, access_key_id, why)
        if locked:
            self.auditor.emit("MfaLockout", RequestInfo(), user=serial,
                              identity_type="IAMUser",
                              additional={"kind": "virtual-device", "accessKeyId": access_key_id})
        raise DeviceRefused(why)

    def _audit(self, serial: str, access_key_id: str, error: str | None) -> None:
        self.auditor.emit("MfaVerify", RequestInfo(), user=serial, identity_type="IAMUser",
                          error_code=error,
                          error_message="Second factor refused" if error else None,
                          additional={"kind": "virtual-device", "accessKeyId": access_key_id})
