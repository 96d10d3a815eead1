"""AWS's own input for the simulator: ``aws iam simulate-custom-policy --cli-input-json``.

The JSON skeleton the AWS CLI prints with ``--generate-cli-skeleton`` (``PolicyInputList``,
``PermissionsBoundaryPolicyInputList``, ``OrderedOrganizationPolicyInputList``,
``ActionNames``, ``ResourceArns``, ``ResourcePolicy``, ``ResourceOwner``, ``CallerArn``,
``ContextEntries``, ``ResourceHandlingOption``, ``MaxItems``, ``Marker``; IAM API Reference,
``SimulateCustomPolicy``) becomes the Query parameters ``POST /iam`` receives, so both answer
through one code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.iam.errors import IamError

LIST_KEYS = ("PolicyInputList", "PermissionsBoundaryPolicyInputList", "ActionNames",
             "ResourceArns")
SCALAR_KEYS = ("ResourcePolicy", "ResourceOwner", "CallerArn", "ResourceHandlingOption",
               "Marker")
CONTEXT_KEYS = ("ContextKeyName", "ContextKeyValues", "ContextKeyType")
ORG_KEY = "OrderedOrganizationPolicyInputList"
SCP_KEY = "ServiceControlPolicyInputList"
VALID_KEYS = (*LIST_KEYS, ORG_KEY, *SCALAR_KEYS, "ContextEntries", "MaxItems")


class AwsInputError(IamError):
    """The ``--cli-input-json`` document is not of ``SimulateCustomPolicy``'s shape."""

    code = "ValidationError"


def is_aws_input(data: Any) -> bool:
    """A ``simulate-custom-policy`` skeleton rather than this project's format."""
    return isinstance(data, Mapping) and ("PolicyInputList" in data or "ActionNames" in data)


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise AwsInputError(f"`{where}` must be a list of strings")


def query_params(data: Mapping[str, Any]) -> dict[str, str]:
    """The ``SimulateCustomPolicy`` Query parameters of a ``--cli-input-json`` document."""
    unknown = sorted(k for k in data if k not in VALID_KEYS)
    if unknown:
        raise AwsInputError(f"unknown key `{unknown[0]}`; valid keys: {', '.join(VALID_KEYS)}")
    params = {"Action": "SimulateCustomPolicy", "Version": "2010-05-08"}
    for key in LIST_KEYS:
        if key in data:
            for i, item in enumerate(_strings(data[key], key), start=1):
                params[f"{key}.member.{i}"] = item
    levels = data.get(ORG_KEY, [])
    if not isinstance(levels, list):
        raise AwsInputError(f"`{ORG_KEY}` must be a list")
    for n, level in enumerate(levels, start=1):
        if not isinstance(level, Mapping) or set(level) - {SCP_KEY}:
            raise AwsInputError(f"`{ORG_KEY}[{n - 1}]` must be an object with the key "
                                f"{SCP_KEY}")
        scps = _strings(level.get(SCP_KEY, []), f"{ORG_KEY}[{n - 1}].{SCP_KEY}")
        for i, item in enumerate(scps, start=1):
            params[f"{ORG_KEY}.member.{n}.{SCP_KEY}.member.{i}"] = item
    for key in SCALAR_KEYS:
        if key in data:
            if not isinstance(data[key], str):
                raise AwsInputError(f"`{key}` must be a string")
            params[key] = data[key]
    if "MaxItems" in data:
        if isinstance(data["MaxItems"], bool) or not isinstance(data["MaxItems"], int):
            raise AwsInputError("`MaxItems` must be an integer")
        params["MaxItems"] = str(data["MaxItems"])
    entries = data.get("ContextEntries", [])
    if not isinstance(entries, list):
        raise AwsInputError("`ContextEntries` must be a list")
    for n, entry in enumerate(entries, start=1):
        where = f"ContextEntries[{n - 1}]"
        if not isinstance(entry, Mapping):
            raise AwsInputError(f"`{where}` must be an object")
        bad = sorted(k for k in entry if k not in CONTEXT_KEYS)
        if bad:
            raise AwsInputError(f"unknown key `{where}.{bad[0]}`; valid keys: "
                                f"{', '.join(CONTEXT_KEYS)}")
        base = f"ContextEntries.member.{n}"
        if "ContextKeyName" in entry:
            params[f"{base}.ContextKeyName"] = str(entry["ContextKeyName"])
        if "ContextKeyType" in entry:
            params[f"{base}.ContextKeyType"] = str(entry["ContextKeyType"])
        values = entry.get("ContextKeyValues", [])
        for i, v in enumerate(_strings(values, f"{where}.ContextKeyValues"), start=1):
            params[f"{base}.ContextKeyValues.member.{i}"] = v
    return params
