"""``idp policy validate FILE`` and ``idp policy simulate FILE``.

``validate`` checks a policy document (as ``--type``), or every policy of a simulate file;
``simulate`` evaluates one request or a list of them (format: :mod:`idp.iam.simfile`) and prints
one JSON result per line: ``{"response", "blockedBy", "matched"}``.  Invalid input exits with
status 1 and a message, never a traceback.
"""

from __future__ import annotations

import json
from typing import IO, Any, get_args

import click

from idp.iam.errors import IamError, MalformedPolicyDocument
from idp.iam.evaluate import evaluate
from idp.iam.policy import parse_policy
from idp.iam.simfile import load_entry
from idp.iam.validation import PolicyKind

policy = click.Group("policy", help="Validate IAM policies and simulate requests.")


def _load(file: IO[str]) -> Any:
    try:
        return json.load(file)
    except (ValueError, RecursionError) as exc:
        raise click.ClickException(f"`{file.name}` is not valid JSON: {exc}") from None


def _entries(data: Any) -> list[Any]:
    items = data if isinstance(data, list) else [data]
    if not items:
        raise click.ClickException("the file holds an empty list")
    return items


@policy.command("validate")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--type", "kind", type=click.Choice(get_args(PolicyKind)), default="identity",
              show_default=True, help="policy type, for a file holding one policy document")
def validate_command(file: IO[str], kind: PolicyKind) -> None:
    """Check FILE: one policy document, or simulate entries (every policy they hold)."""
    data = _load(file)
    try:
        if isinstance(data, dict) and "Statement" in data:
            p = parse_policy(data, kind, file.name)
            click.echo(f"{file.name}: valid {kind} policy, {len(p.statements)} statement(s)")
            return
        for i, entry in enumerate(_entries(data)):
            _, policies = load_entry(entry)
            count = sum(1 for _ in policies.all_policies())
            click.echo(f"{file.name}[{i}]: {count} valid policy document(s)")
    except MalformedPolicyDocument as exc:
        raise click.ClickException(f"MalformedPolicyDocument: {exc.located()}") from None
    except IamError as exc:
        raise click.ClickException(exc.description) from None


@policy.command("simulate")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--pretty", is_flag=True, help="indent the JSON results")
def simulate_command(file: IO[str], pretty: bool) -> None:
    """Evaluate the request(s) in FILE; print one JSON result per request."""
    data = _load(file)
    loaded = []
    for i, entry in enumerate(_entries(data)):
        try:
            loaded.append(load_entry(entry))
        except MalformedPolicyDocument as exc:
            raise click.ClickException(
                f"entry {i}: MalformedPolicyDocument: {exc.located()}") from None
        except IamError as exc:
            raise click.ClickException(f"entry {i}: {exc.description}") from None
    for request, policies in loaded:
        result = evaluate(request, policies).to_json()
        click.echo(json.dumps(result, indent=2 if pretty else None))
