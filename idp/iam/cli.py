"""``idp policy validate FILE`` and ``idp policy simulate FILE``.

``validate`` checks a policy document (as ``--type``), or every policy of a simulate file, and
reports every problem at once; ``simulate`` evaluates one request or a list of them (format:
:mod:`idp.iam.simfile`, docs/iam.md) and prints one JSON result per entry:
``{"response", "blockedBy", "matched"}``, or ``{"error": {"code", "message", "path"}}`` for an
entry that cannot be evaluated — the other entries are still evaluated.  An
``aws iam simulate-custom-policy --cli-input-json`` document is answered as ``POST /iam``
answers ``SimulateCustomPolicy``.  Exit status: 0 when every entry was evaluated (whatever the
decisions), 1 when any entry or document had a problem; never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any, get_args

import click

from idp.iam.awsinput import is_aws_input, query_params
from idp.iam.errors import IamError
from idp.iam.evaluate import evaluate
from idp.iam.explain import explain
from idp.iam.model import IamModel
from idp.iam.query import simulate_custom_policy_json
from idp.iam.simfile import EntryError, entry_problems, load_entry
from idp.iam.validation import PolicyKind, problems

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
    """Check FILE: one policy document, or simulate entries (every policy they hold).
    Every problem is printed; the exit status is 1 when there is any."""
    data = _load(file)
    if isinstance(data, dict) and "Statement" in data:
        malformed = problems(data, kind)
        for exc in malformed:
            click.echo(f"{file.name}: MalformedPolicyDocument: {exc.located()}")
        if malformed:
            sys.exit(1)
        st = data["Statement"]
        count = len(st) if isinstance(st, list) else 1
        click.echo(f"{file.name}: valid {kind} policy, {count} statement(s)")
        return
    failed = False
    for i, entry in enumerate(_entries(data)):
        where = f"{file.name}[{i}]"
        if is_aws_input(entry):
            message = _validate_aws(entry)
            failed = failed or message is not None
            click.echo(f"{where}: {message or 'valid simulate-custom-policy input'}")
            continue
        found = entry_problems(entry)
        for p in found:
            at = f" {p.path}" if p.path else ""
            click.echo(f"{where}{at}: {p.code}: {p.message}")
        if found:
            failed = True
            continue
        _, policies = load_entry(entry)
        count = sum(1 for _ in policies.all_policies())
        click.echo(f"{where}: {count} valid policy document(s)")
    if failed:
        sys.exit(1)


def _validate_aws(entry: Any) -> str | None:
    """The problem of a ``--cli-input-json`` document, as ``/iam`` would answer it."""
    try:
        simulate_custom_policy_json(query_params(entry), IamModel())
    except IamError as exc:
        return f"{exc.code}: {exc.description}"
    return None


@policy.command("simulate")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--pretty", is_flag=True, help="indent the JSON results")
@click.option("--explain", "explained", is_flag=True,
              help="add an `explanation`: what matched or blocked, per policy type, in words")
def simulate_command(file: IO[str], pretty: bool, explained: bool) -> None:
    """Evaluate the request(s) in FILE; print one JSON result per request.  The exit status
    is 1 when any entry could not be evaluated (its result is an `error`)."""
    data = _load(file)
    if is_aws_input(data):
        try:
            out = simulate_custom_policy_json(query_params(data), IamModel())
        except IamError as exc:
            click.echo(json.dumps({"error": {"code": exc.code, "message": exc.description,
                                             "path": ""}}, indent=2 if pretty else None))
            sys.exit(1)
        click.echo(json.dumps(out, indent=2 if pretty else None))
        return
    failed = False
    for entry in _entries(data):
        try:
            request, policies = load_entry(entry)
        except EntryError as exc:
            failed = True
            result: dict[str, Any] = {"error": exc.problems[0].to_json()}
            if len(exc.problems) > 1:
                result["otherErrors"] = [p.to_json() for p in exc.problems[1:]]
        else:
            decision = evaluate(request, policies)
            result = decision.to_json()
            if explained:
                result["explanation"] = explain(request, policies, decision)
        click.echo(json.dumps(result, indent=2 if pretty else None))
    if failed:
        sys.exit(1)
