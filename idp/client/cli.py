"""``idp login | logout | configure | credentials | exec | token`` (docs/cli.md).

argparse and the standard library only: ``idp credentials`` runs on every AWS SDK client
creation, so it must start fast and import nothing of the server."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from idp.client.errors import ClientError
from idp.client.store import Profile, TokenStore, load_profiles, save_profile

DEFAULT_CLIENT = os.environ.get("IDP_CLIENT_ID", "idp-cli")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="idp", description="Sign in and get role credentials.")
    sub = ap.add_subparsers(dest="command", required=True)

    def profile_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default=os.environ.get("IDP_PROFILE", "default"))

    p = sub.add_parser("login", help="sign in (browser with PKCE, or device code)")
    profile_opts(p)
    p.add_argument("--issuer")
    p.add_argument("--client-id")
    p.add_argument("--device-code", action="store_true", help="sign in on another device")
    p.add_argument("--no-browser", action="store_true", help="print the URL, open nothing")
    p.add_argument("--role", help="role ARN or name (else: a choice on the terminal)")

    p = sub.add_parser("logout", help="forget the refresh token and cached credentials")
    profile_opts(p)

    p = sub.add_parser("configure", help="write an AWS config profile using credential_process")
    profile_opts(p)
    p.add_argument("--role", required=True)
    p.add_argument("--issuer")
    p.add_argument("--client-id")
    p.add_argument("--sts-endpoint")
    p.add_argument("--region")
    p.add_argument("--duration", type=int)
    p.add_argument("--aws-config", help="default: $AWS_CONFIG_FILE or ~/.aws/config")

    for name, text in (("credentials", "credential_process: JSON on stdout"),
                       ("exec", "run a command with role credentials")):
        p = sub.add_parser(name, help=text)
        profile_opts(p)
        p.add_argument("--role")
        p.add_argument("--duration", type=int, help="seconds (clamped to the role's maximum)")
    p.add_argument("--server", action="store_true",
                   help="serve credentials to CMD on a loopback endpoint (ECS format)")
    p.add_argument("cmd", nargs=argparse.REMAINDER)

    p = sub.add_parser("token", help="keep a workload's web identity token file fresh")
    p.add_argument("--issuer", required=True)
    p.add_argument("--client-id", required=True)
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument("--client-secret-file")
    auth.add_argument("--private-key", help="PEM key for private_key_jwt (RFC 7523)")
    p.add_argument("--key-id", help="`kid` of --private-key")
    p.add_argument("--scope", default="roles")
    p.add_argument("--write", required=True, metavar="FILE")
    p.add_argument("--refresh", action="store_true", help="keep renewing until stopped")
    return ap


def _profile(args: argparse.Namespace, *, create: bool = False) -> Profile:
    profiles = load_profiles()
    prof = profiles.get(args.profile)
    issuer = getattr(args, "issuer", None)
    client_id = getattr(args, "client_id", None)
    if prof is None:
        if not (create and issuer):
            raise ClientError(f"no profile `{args.profile}`: run `idp login --issuer URL "
                              f"--profile {args.profile}`")
        prof = Profile(args.profile, issuer.rstrip("/"), client_id or DEFAULT_CLIENT)
    else:
        if issuer:
            prof.issuer = issuer.rstrip("/")
        if client_id:
            prof.client_id = client_id
    return prof


def main(argv: Sequence[str] | None = None, *, clock: Callable[[], float] = time.time) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, clock)
    except ClientError as exc:
        _err(f"idp {args.command}: {exc.message}")
        return exc.status if exc.status != 0 else 1
    except KeyboardInterrupt:
        _err(f"idp {args.command}: interrupted")
        return 130


def cmd_login(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    from idp.client.session import Session

    s = Session(_profile(args, create=True), TokenStore(), clock, _err,
                device_code=args.device_code, open_browser=not args.no_browser)
    try:
        tokens = s.login()
        role = s.pick_role(tokens, args.role)
        s.remember_role(role)
        creds = s.credentials(role, s.profile.duration, tokens=tokens)
    finally:
        s.close()
    _err(f"signed in to {s.profile.issuer}; profile `{s.profile.name}` uses {role} "
         f"(assumed as {creds.assumed_role_arn}); the refresh token is kept in "
         f"{s.tokens.where}")
    return 0


def cmd_logout(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    import shutil

    from idp.client.store import home

    prof = _profile(args)
    TokenStore().delete(prof.login_key)
    shutil.rmtree(home() / "cache", ignore_errors=True)
    _err(f"signed out of {prof.issuer}")
    return 0


def cmd_configure(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    from idp.client.awsconfig import credential_process_command, write_profile

    prof = _profile(args, create=True)
    prof.role_arn = args.role
    for name in ("sts_endpoint", "region", "duration"):
        if getattr(args, name) is not None:
            setattr(prof, name, getattr(args, name))
    save_profile(prof)
    path = write_profile(args.aws_config, prof.name, {
        "credential_process": credential_process_command(prof.name),
        **({"region": prof.region} if prof.region else {})})
    _err(f"wrote profile `{prof.name}` to {path}")
    return 0


def _role_and_session(args: argparse.Namespace, clock: Callable[[], float]):  # type: ignore[no-untyped-def]
    from idp.client.session import Session

    s = Session(_profile(args), TokenStore(), clock, _err)
    role = args.role or s.profile.role_arn
    if not role:
        raise ClientError(f"profile `{s.profile.name}` has no role: pass --role or run "
                          f"`idp configure --profile {s.profile.name} --role ARN`")
    return s, role, args.duration if args.duration is not None else s.profile.duration


def cmd_credentials(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    s, role, duration = _role_and_session(args, clock)
    try:
        creds = s.credentials(role, duration)
    finally:
        s.close()
    sys.stdout.write(json.dumps(creds.process_json()) + "\n")
    return 0


def cmd_exec(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    from idp.client.execute import run

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ClientError("no command: idp exec --profile NAME -- CMD…", status=2)
    s, role, duration = _role_and_session(args, clock)
    try:
        return run(s, role, duration, cmd, server=args.server)
    finally:
        s.close()


def cmd_token(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    from idp.client.workload import keep_token_file

    return int(keep_token_file(args, _err))


COMMANDS: dict[str, Callable[[argparse.Namespace, Callable[[], float]], int]] = {
    "login": cmd_login, "logout": cmd_logout, "configure": cmd_configure,
    "credentials": cmd_credentials, "exec": cmd_exec, "token": cmd_token,
}


def run() -> None:
    """The ``idp`` script of the client-only distribution (``client/pyproject.toml``)."""
    sys.exit(main())
