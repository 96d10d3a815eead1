"""Role credentials for a profile: from the cache while they are fresh, renewed silently with
the refresh token before they expire, and a new sign-in only when the refresh token is gone,
and only with a terminal to ask on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from idp.client.errors import ClientError
from idp.client.store import (
    Profile,
    TokenStore,
    cache_path,
    login_lock,
    read_json,
    save_profile,
    write_private,
)
from idp.client.sts import Credentials, clamped, session_name
from idp.client.tty import Terminal, open_terminal

if TYPE_CHECKING:  # the HTTP side is loaded only when the cache cannot answer
    from idp.client import oidc

RENEW_BEFORE = 15 * 60
"""Credentials with less than this left are renewed: botocore itself refreshes
``credential_process`` credentials 15 minutes before they expire (its advisory window), so
handing out fresher ones spares it a second call."""

STEP_UP_ERRORS = ("insufficient_user_authentication",)
"""Refusals that ask for a stronger sign-in (RFC 9470 §3): the client signs in again in the
browser with ``acr_values`` = :data:`STEP_UP_ACR`."""
STEP_UP_ACR = "https://refeds.org/profile/mfa"
"""The ``acr`` the IdP grants a session with a second factor (the REFEDS MFA profile, listed in
its discovery document's ``acr_values_supported``): asking for it makes the authorize
endpoint ask for the second factor (OIDC Core §3.1.2.1)."""


class LoginRequired(ClientError):
    """No usable refresh token and no terminal to sign in on."""


@dataclass
class Session:
    profile: Profile
    tokens: TokenStore = field(default_factory=TokenStore)
    clock: Callable[[], float] = time.time
    notice: Callable[[str], None] = print
    device_code: bool = False
    open_browser: bool = True
    _terminal: Terminal | None = None
    _endpoints: oidc.Endpoints | None = None

    # -- sign-in ----------------------------------------------------------------------------
    def endpoints(self) -> oidc.Endpoints:
        from idp.client import oidc

        if self._endpoints is None:
            self._endpoints = oidc.Endpoints.discover(self.profile.issuer)
        return self._endpoints

    def terminal(self) -> Terminal | None:
        if self._terminal is None:
            self._terminal = open_terminal()
        return self._terminal

    def login(self, acr_values: str | None = None) -> dict[str, Any]:
        """Sign in (browser with PKCE, or device code) and keep the refresh token."""
        from idp.client import oidc

        term = self.terminal()
        say = term.say if term is not None else self.notice
        ep, p = self.endpoints(), self.profile
        # no display: the device code, unless told to print the loopback URL (--no-browser)
        if self.device_code or (self.open_browser and not oidc.has_display()):
            tokens = oidc.device_login(ep, p.client_id, p.scopes, say=say)
        else:
            tokens = oidc.browser_login(ep, p.client_id, p.scopes, say=say,
                                        open_browser=self.open_browser, acr_values=acr_values)
        self._keep(tokens)
        return tokens

    def _keep(self, tokens: dict[str, Any]) -> None:
        rt = tokens.get("refresh_token")
        if isinstance(rt, str) and rt:
            self.tokens.put(self.profile.login_key, rt)

    def fresh_tokens(self, *, interactive: bool) -> dict[str, Any]:
        """New tokens from the refresh token (rotated and kept), else from a new sign-in when
        ``interactive`` and a terminal exists, else :class:`LoginRequired`."""
        from idp.client import oidc

        rt = self.tokens.get(self.profile.login_key)
        if rt is not None:
            try:
                tokens = oidc.refresh(self.endpoints(), self.profile.client_id, rt)
            except ClientError as exc:
                if exc.code != "invalid_grant":
                    raise
                self.tokens.delete(self.profile.login_key)
            else:
                self._keep(tokens)
                return tokens
        if not interactive or self.terminal() is None:
            raise LoginRequired(f"not signed in to {self.profile.issuer} (or the sign-in "
                                f"ended): run `idp login --profile {self.profile.name}`",
                                "login_required", status=3)
        return self.login()

    # -- credentials ------------------------------------------------------------------------
    def cached(self, role_arn: str, duration: int | None) -> Credentials | None:
        data = read_json(cache_path(self.profile, role_arn, duration))
        if data is None:
            return None
        try:
            creds = Credentials.from_process_json(data)
            left = _epoch(creds.expiration) - self.clock()
        except (KeyError, ValueError):
            return None
        return creds if left > RENEW_BEFORE else None

    def credentials(self, role_arn: str, duration: int | None = None, *,
                    interactive: bool = True, tokens: dict[str, Any] | None = None
                    ) -> Credentials:
        """The role's credentials: cached, or renewed (and cached, 0600).

        Renewal holds the login's lock: SDKs start several ``credential_process`` at once,
        and two renewals with one refresh token would be a reuse, which revokes the sign-in
        (RFC 9700 §4.14.2).  The second one waits, then finds the first one's credentials."""
        hit = self.cached(role_arn, duration)
        if hit is not None:
            return hit
        with login_lock(self.profile.login_key):
            hit = self.cached(role_arn, duration)
            if hit is not None:
                return hit
            return self._renew(role_arn, duration, interactive, tokens)

    def _renew(self, role_arn: str, duration: int | None, interactive: bool,
               tokens: dict[str, Any] | None) -> Credentials:
        path = cache_path(self.profile, role_arn, duration)
        known = (read_json(path) or {}).get("IssuedDuration")
        tokens = tokens or self.fresh_tokens(interactive=interactive)
        for attempt in (0, 1):
            try:
                creds, issued = self._assume(role_arn, tokens, duration,
                                             known if isinstance(known, int) else None)
                break
            except ClientError as exc:
                if attempt or not self._step_up_asked(exc, role_arn, tokens) \
                        or not interactive or self.terminal() is None:
                    raise
                tokens = self.login(acr_values=STEP_UP_ACR)
        write_private(path, {**creds.process_json(), "AssumedRoleArn": creds.assumed_role_arn,
                             "IssuedDuration": issued})
        return creds

    def _assume(self, role_arn: str, tokens: dict[str, Any], duration: int | None,
                known: int | None) -> tuple[Credentials, int | None]:
        from idp.client import oidc
        from idp.client.sts import assume_role_with_web_identity

        token = str(tokens.get("id_token") or tokens.get("access_token") or "")
        claims = oidc.claims_of(token)
        name = session_name(str(claims.get("preferred_username") or claims.get("sub") or ""))
        return clamped(lambda d: assume_role_with_web_identity(
            self.profile.sts_url, role_arn, token, d, name), duration, known, self.notice)

    @staticmethod
    def _step_up_asked(exc: ClientError, role_arn: str, tokens: dict[str, Any]) -> bool:
        """Whether a refusal asks for a stronger sign-in (the step-up hook): the OAuth
        ``insufficient_user_authentication`` error (RFC 9470), an STS refusal naming
        ``aws:MultiFactorAuthPresent``, or ``AccessDenied`` for a role the mapping gives the
        person while the token says no second factor (``amr`` without ``mfa``, RFC 8176).

        An STS names no condition when a trust policy refuses (AWS answers "Not authorized
        to perform sts:AssumeRoleWithWebIdentity", and so does this IdP): a mapped role
        refused to a password-only sign-in is what a role requiring
        ``aws:MultiFactorAuthPresent`` looks like, and a token that already says MFA is
        never stepped up again."""
        from idp.client import oidc

        if exc.code in STEP_UP_ERRORS or "MultiFactorAuth" in exc.message:
            return True
        if exc.code != "AccessDenied" or role_arn not in oidc.roles_of(tokens):
            return False
        token = str(tokens.get("id_token") or tokens.get("access_token") or "")
        amr = oidc.claims_of(token).get("amr")
        return not (isinstance(amr, list) and "mfa" in amr)

    def pick_role(self, tokens: dict[str, Any], wanted: str | None) -> str:
        """``--role`` (an ARN or a role name the person maps to), the only role, or a choice
        on the terminal."""
        from idp.client import oidc

        roles = oidc.roles_of(tokens)
        if wanted:
            match = [r for r in roles if r == wanted or r.rsplit("/", 1)[-1] == wanted]
            if not match:
                raise ClientError(f"`{wanted}` is not among your roles: " +
                                  (", ".join(roles) or "none"))
            return match[0]
        if not roles:
            raise ClientError("the mapping gives you no role")
        if len(roles) == 1:
            return roles[0]
        term = self.terminal()
        if term is None:
            raise ClientError("several roles and no terminal to choose on: pass --role")
        return term.pick("Roles you may take:", roles)

    def remember_role(self, role_arn: str) -> None:
        self.profile.role_arn = role_arn
        save_profile(self.profile)

    def close(self) -> None:
        if self._terminal is not None:
            self._terminal.close()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
