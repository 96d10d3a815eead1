"""Policy-document validation with AWS's ``MalformedPolicyDocument`` messages.

The grammar is the one of the IAM User Guide, "Grammar of the IAM JSON policy language" and
"IAM JSON policy element reference"; which policy types may or must carry which element comes
from "Policy types" (identity, resource, trust, permissions boundary, session, SCP, RCP).  The
messages are AWS's own wording for each problem (as returned by ``CreatePolicy``,
``PutRolePolicy``, ``CreateRole``, ``UpdateAssumeRolePolicy``).  Checks run in AWS's order:
syntax, version, legacy parsing, statement IDs, actions, resources, principals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from idp.iam.arn import AWS_PRINCIPAL, HOSTNAME, PARTITIONS, PROVIDER_ARN, UNIQUE_ID
from idp.iam.conditions import parse_date, split_operator
from idp.iam.errors import MalformedPolicyDocument

PolicyKind = Literal["identity", "resource", "trust", "boundary", "session", "scp", "rcp"]
VERSIONS = ("2012-10-17", "2008-10-17")
TOP_KEYS = frozenset({"Version", "Id", "Statement"})
STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                            "Resource", "NotResource", "Condition"})
PRINCIPAL_KEYS = ("AWS", "Federated", "Service", "CanonicalUser")
TRUST_ACTIONS = frozenset(a.lower() for a in (
    "sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity",
    "sts:DecodeAuthorizationMessage", "sts:GetAccessKeyInfo", "sts:GetCallerIdentity",
    "sts:GetFederationToken", "sts:GetServiceBearerToken", "sts:GetSessionToken",
    "sts:SetSourceIdentity", "sts:TagSession", "sts:SetContext", "sts:*", "*"))
IAM_PATHS = ("user/", "federated-user/", "role/", "group/", "instance-profile/", "mfa/",
             "server-certificate/", "policy/", "sms-mfa/", "saml-provider/", "oidc-provider/",
             "report/", "access-report/")
_IDENTITY_KINDS = ("identity", "boundary", "session", "scp")
_VENDOR = re.compile(r"[^a-zA-Z0-9\-.]")
_SID = re.compile(r"^[0-9A-Za-z]*$")

SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"


def _fail(message: str, pointer: str = "") -> MalformedPolicyDocument:
    return MalformedPolicyDocument(message, pointer)


def statements_of(doc: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(pointer, statement) pairs; ``Statement`` may be one object or a list."""
    st = doc.get("Statement")
    if isinstance(st, Mapping):
        return [("Statement", st)]
    if isinstance(st, list):
        return [(f"Statement[{i}]", s) for i, s in enumerate(st)]
    return []


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def validate(doc: Any, kind: PolicyKind) -> None:
    """Raise :class:`MalformedPolicyDocument` for the first problem, as AWS reports it."""
    _syntax(doc)
    version = doc.get("Version")
    if version is not None and version not in VERSIONS:
        raise _fail("Invalid Version", "Version")
    stmts = statements_of(doc)
    for ptr, st in stmts:
        _legacy(ptr, st)
    sids: set[str] = set()
    for ptr, st in stmts:
        sid = st.get("Sid")
        if sid:
            if sid in sids:
                raise _fail("Statement IDs (SID) in a single policy must be unique.", f"{ptr}.Sid")
            sids.add(sid)
    for ptr, st in stmts:
        key = "Action" if "Action" in st else "NotAction"
        if not st.get(key):
            raise _fail("Policy statement must contain actions.", ptr)
    for ptr, st in stmts:
        for key in ("Resource", "NotResource"):
            for r in _strings(st.get(key)) or []:
                _resource_format(r, f"{ptr}.{key}")
    for ptr, st in stmts:
        for key in ("Action", "NotAction"):
            for a in _strings(st.get(key)) or []:
                _action_format(a, f"{ptr}.{key}")
    for ptr, st in stmts:
        _kind_rules(ptr, st, kind)


def _syntax(doc: Any) -> None:
    if not isinstance(doc, Mapping):
        raise _fail(SYNTAX)
    for key in doc:
        if key not in TOP_KEYS:
            raise _fail(SYNTAX, str(key))
    if "Version" in doc and not isinstance(doc["Version"], str):
        raise _fail(SYNTAX, "Version")
    if "Id" in doc and not isinstance(doc["Id"], str):
        raise _fail(SYNTAX, "Id")
    st = doc.get("Statement")
    if not isinstance(st, Mapping | list) or not st:
        raise _fail(SYNTAX, "Statement")
    for ptr, s in statements_of(doc):
        _statement_syntax(ptr, s)


def _statement_syntax(ptr: str, st: Any) -> None:
    if not isinstance(st, Mapping):
        raise _fail(SYNTAX, ptr)
    for key in st:
        if key not in STATEMENT_KEYS:
            raise _fail(SYNTAX, f"{ptr}.{key}")
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource"),
                 ("Principal", "NotPrincipal")):
        if a in st and b in st:
            raise _fail(SYNTAX, f"{ptr}.{b}")
    if "Effect" not in st:
        raise _fail("Missing required field Effect", ptr)
    if not isinstance(st["Effect"], str) or st["Effect"].lower() not in ("allow", "deny"):
        raise _fail(SYNTAX, f"{ptr}.Effect")
    if "Sid" in st and not isinstance(st["Sid"], str):
        raise _fail(SYNTAX, f"{ptr}.Sid")
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        if key in st and _strings(st[key]) is None:
            raise _fail(SYNTAX, f"{ptr}.{key}")
    for key in ("Principal", "NotPrincipal"):
        if key in st:
            _principal_syntax(st[key], f"{ptr}.{key}")
    if "Condition" in st:
        _condition_syntax(st["Condition"], f"{ptr}.Condition")


def _principal_syntax(value: Any, ptr: str) -> None:
    if value == "*":
        return
    if isinstance(value, str):
        raise _fail(f'Invalid principal in policy: "{value}"', ptr)
    if not isinstance(value, Mapping) or not value:
        raise _fail(SYNTAX, ptr)
    for key, v in value.items():
        if key not in PRINCIPAL_KEYS:
            raise _fail(f'Invalid principal in policy: "{key}":{_show(v)}', ptr)
        values = _strings(v)
        if not values:
            raise _fail(f'Invalid principal in policy: "{key}":{_show(v)}', f"{ptr}.{key}")
        for item in values:
            if not _principal_ok(key, item):
                raise _fail(f'Invalid principal in policy: "{key}":"{item}"', f"{ptr}.{key}")


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v)


def _principal_ok(key: str, item: str) -> bool:
    if key == "AWS":
        return (item == "*" or bool(re.match(r"^\d{12}$", item))
                or bool(AWS_PRINCIPAL.match(item) and AWS_PRINCIPAL.match(item).group("p")  # type: ignore[union-attr]
                        in PARTITIONS) or bool(UNIQUE_ID.match(item)))
    if key == "Federated":
        return bool(PROVIDER_ARN.match(item)) or ("*" not in item and bool(HOSTNAME.match(item))
                                                  and "." in item)
    if key == "Service":
        return item == "*" or (bool(HOSTNAME.match(item)) and "." in item)
    return bool(re.match(r"^[0-9a-f]{64}$", item))


def _condition_syntax(cond: Any, ptr: str) -> None:
    if not isinstance(cond, Mapping):
        raise _fail(SYNTAX, ptr)
    for op, body in cond.items():
        if not isinstance(body, Mapping):
            raise _fail(SYNTAX, f"{ptr}.{op}")
        if split_operator(op) is None and body:
            raise _fail(SYNTAX, f"{ptr}.{op}")
        for key, v in body.items():
            items = v if isinstance(v, list) else [v]
            if not all(isinstance(i, str | bool | int | float) for i in items):
                raise _fail(SYNTAX, f"{ptr}.{op}.{key}")
            if ":" not in key:
                raise _fail("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, "
                            "ec2, etc.", f"{ptr}.{op}.{key}")


def _legacy(ptr: str, st: Mapping[str, Any]) -> None:
    if st["Effect"] not in ("Allow", "Deny"):
        raise _fail(LEGACY, f"{ptr}.Effect")
    for key in ("Resource", "NotResource"):
        for r in _strings(st.get(key)) or []:
            if r != "*" and (("::" in r and r.count(":") < 5)
                             or (r.count(":") >= 2 and r.split(":")[2] == "")):
                raise _fail(LEGACY, f"{ptr}.{key}")
    for op, body in (st.get("Condition") or {}).items():
        split = split_operator(op)
        if split is None or not split[1].startswith("Date"):
            continue
        for key, v in body.items():
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, bool) or parse_date(str(item)) is None:
                    raise _fail(LEGACY, f"{ptr}.Condition.{op}.{key}")


def _resource_format(r: str, ptr: str) -> None:
    if r == "*":
        return
    parts = r.split(":", 5)
    if len(parts) < 2 or parts[0] != "arn":
        raise _fail(f'Resource {r} must be in ARN format or "*".', ptr)
    partition = parts[1]
    if partition != "*" and partition not in PARTITIONS:
        rest = (parts[2:] + ["*"] * 4)[:4]
        rest = [x or "*" for x in rest]
        raise _fail(f'Partition "{partition}" is not valid for resource '
                    f'"arn:{partition}:{":".join(rest)}".', ptr)
    if len(parts) < 4:
        raise _fail("Resource vendor must be fully qualified and cannot contain regexes.", ptr)
    service, region = parts[2], parts[3]
    resource = parts[5] if len(parts) == 6 else ""
    if service == "iam" and region:
        raise _fail(f"IAM resource {r} cannot contain region information.", ptr)
    if service == "s3" and region and not resource.startswith("accesspoint/"):
        raise _fail(f"Resource {r} can not contain region information.", ptr)
    if service == "iam" and len(parts) == 6 and not resource.startswith(("*", "?", "$")) \
            and not resource.startswith(IAM_PATHS) and resource != "root":
        raise _fail('IAM resource path must either be "*" or start with '
                    f"{', '.join(IAM_PATHS)}.", ptr)


def _action_format(action: str, ptr: str) -> None:
    parts = action.split(":")
    if len(parts) == 1 and parts[0] != "*":
        raise _fail("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                    ptr)
    if len(parts) > 2:
        raise _fail("Actions/Condition can contain only one colon.", ptr)
    if parts[0] != "*" and _VENDOR.search(parts[0]):
        raise _fail(f"Vendor {parts[0]} is not valid", ptr)


def _kind_rules(ptr: str, st: Mapping[str, Any], kind: PolicyKind) -> None:
    has_principal = "Principal" in st or "NotPrincipal" in st
    if kind in _IDENTITY_KINDS and has_principal:
        raise _fail("Policy document should not specify a principal.", ptr)
    if kind in ("resource", "trust", "rcp") and not has_principal:
        raise _fail("Missing required field Principal", ptr)
    has_resource = "Resource" in st or "NotResource" in st
    if kind == "trust":
        if has_resource:
            raise _fail("Has prohibited field Resource.", ptr)
        for a in _strings(st.get("Action", st.get("NotAction"))) or []:
            if a.lower() not in TRUST_ACTIONS:
                raise _fail("Trust Policy statement actions can only be sts:AssumeRole, "
                            "sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
                            f"{ptr}.Action")
    elif kind not in ("scp", "resource"):  # a resource policy's statements default to its resource
        key = "Resource" if "Resource" in st else "NotResource"
        if not st.get(key):
            raise _fail("Policy statement must contain resources.", ptr)
    if kind in ("identity", "boundary", "session", "trust") and not _SID.match(st.get("Sid", "")):
        raise _fail("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies "
                    "the regular expression [0-9A-Za-z]*", f"{ptr}.Sid")


def problems(doc: Any, kind: PolicyKind) -> list[MalformedPolicyDocument]:
    """Every problem of a document at once: AWS's first one (:func:`validate`), then the first
    one of each other statement, each checked on its own (for ``idp policy validate``)."""
    try:
        validate(doc, kind)
    except MalformedPolicyDocument as exc:
        found = [exc]
    else:
        return []
    stmts = statements_of(doc) if isinstance(doc, Mapping) else []
    if len(stmts) < 2:
        return found
    seen = {(found[0].pointer, found[0].description)}
    for ptr, st in stmts:
        single = {k: v for k, v in doc.items() if k != "Statement"}
        single["Statement"] = [st]
        try:
            validate(single, kind)
        except MalformedPolicyDocument as exc:
            pointer = exc.pointer.replace("Statement[0]", ptr, 1)
            if (pointer, exc.description) not in seen:
                seen.add((pointer, exc.description))
                found.append(MalformedPolicyDocument(exc.description, pointer))
    return found
