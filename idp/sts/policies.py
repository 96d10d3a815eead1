"""Session policies and session tags (IAM User Guide, "Session policies", "Passing session tags
in AWS STS"; STS API Reference, ``AssumeRole`` parameters ``Policy``, ``PolicyArns``, ``Tags``,
``TransitiveTagKeys`` and the ``PackedPolicyTooLarge`` error).

The inline policy (≤ 2,048 characters), the managed policy ARNs (≤ 10) and the session tags
(≤ 50) are packed into one compressed blob; ``PackedPolicySize`` is that blob's size as a
percentage of :data:`PACKED_LIMIT`, and a request above 100% is refused.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from idp.iam import IamModel, MalformedPolicyDocument, parse_policy
from idp.sts.errors import err, validation
from idp.sts.protocol import Str, members, string_list

PACKED_LIMIT = 2048  # bytes of the compressed session policies + tags blob (100%)
MAX_POLICY_ARNS = 10
MAX_TAGS = 50
_TAG_CHARS = r"[\w\s_.:/=+\-@]"
TAG_KEY = re.compile(rf"^{_TAG_CHARS}{{1,128}}$", re.UNICODE)
TAG_VALUE = re.compile(rf"^{_TAG_CHARS}{{0,256}}$", re.UNICODE)
POLICY = Str("Policy", 1, 2048, r"[\u0009\u000A\u000D\u0020-\u00FF]+")
ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True)
class SessionInputs:
    """The validated session policy and tag parameters of one Assume* request."""

    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()  # inline + resolved managed documents (JSON)
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    packed_size: int = 0


def check_tags(tags: Mapping[str, str], where: str = "tags") -> None:
    """AWS's rules for session tags: ≤ 50, key 1–128, value 0–256 characters, the allowed
    characters, no ``aws:`` prefix, keys unique case-insensitively."""
    if len(tags) > MAX_TAGS:
        raise validation(where, f"[{len(tags)} tags]",
                         f"Member must have length less than or equal to {MAX_TAGS}")
    seen: set[str] = set()
    for k, v in tags.items():
        if not TAG_KEY.match(k):
            raise validation(f"{where}.key", k, r"Member must satisfy regular expression "
                             r"pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+ and length 1-128")
        if not TAG_VALUE.match(v):
            raise validation(f"{where}.value", v, r"Member must satisfy regular expression "
                             r"pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]* and length 0-256")
        if k.lower().startswith("aws:"):
            raise err("InvalidParameterValue", "Tag keys cannot start with the reserved prefix "
                      "'aws:'")
        if k.lower() in seen:
            raise err("InvalidParameterValue", f"Duplicate tag key `{k}` (tag keys are case "
                      "insensitive)")
        seen.add(k.lower())


def packed_size(policy: str | None, arns: Sequence[str], tags: Mapping[str, str]) -> int:
    """``PackedPolicySize``: the compressed size of policies and tags, in percent."""
    if not policy and not arns and not tags:
        return 0
    blob = json.dumps([policy or "", list(arns), sorted(tags.items())],
                      separators=(",", ":")).encode()
    return math.ceil(len(zlib.compress(blob, 9)) * 100 / PACKED_LIMIT)


def _compact(text: str) -> str:
    try:
        return json.dumps(json.loads(text), separators=(",", ":"))
    except ValueError:
        return text


def session_inputs(params: Mapping[str, str], model: IamModel,
                   inherited_tags: Mapping[str, str] | None = None,
                   extra_tags: Mapping[str, str] | None = None,
                   extra_transitive: Sequence[str] = (),
                   request_tags: bool = False) -> SessionInputs:
    """Validate ``Policy``, ``PolicyArns`` and, for ``AssumeRole`` (``request_tags``),
    ``Tags``/``TransitiveTagKeys``; merge in tags from an assertion/token (``extra_tags``) and
    transitive tags of a chained session.  The federated actions take tags only from the
    assertion or token (botocore model: they have no ``Tags`` member)."""
    policy = POLICY.get(params)
    docs: list[str] = []
    if policy is not None:
        try:
            parse_policy(policy, "session", "session")
        except MalformedPolicyDocument as exc:
            raise err("MalformedPolicyDocument", exc.description, debug=exc.pointer) from None
        docs.append(_compact(policy))
    arn_items = members(params, "PolicyArns", MAX_POLICY_ARNS)
    arns: list[str] = []
    for item in arn_items:
        arn = item.get("arn", "")
        if not 20 <= len(arn) <= 2048 or not ARN.match(arn):
            raise validation("policyArns.member.arn", arn, "Member must be a policy ARN")
        managed = model.policies.get(arn)
        if managed is None:
            raise err("InvalidParameterValue", f"The policy {arn} does not exist or is not "
                      "attachable.")
        arns.append(arn)
        docs.append(json.dumps(managed.policy.document, separators=(",", ":")))
    tags: dict[str, str] = dict(extra_tags or {})
    asked: list[str] = []
    if request_tags:
        for item in members(params, "Tags", MAX_TAGS):
            if "Key" not in item:
                raise err("MissingParameter", "The request must contain the parameter Tags.Key")
            tags[item["Key"]] = item.get("Value", "")
        asked = string_list(params, "TransitiveTagKeys", MAX_TAGS)
    transitive = list(dict.fromkeys([*extra_transitive, *asked]))
    for k in transitive:
        if k not in tags:
            raise err("InvalidParameterValue", f"The transitive tag key `{k}` is not a session "
                      "tag of this request")
    for k, v in (inherited_tags or {}).items():
        if k.lower() in {t.lower() for t in tags}:
            raise err("InvalidParameterValue", f"The tag key `{k}` is a transitive tag of the "
                      "calling session and cannot be set again")
        tags[k] = v
        transitive.append(k)
    check_tags(tags)
    size = packed_size(policy, arns, tags)
    if size > 100:
        raise err("PackedPolicyTooLarge", f"Packed size of the session policies and tags is "
                  f"{size}% of the allowed maximum")
    return SessionInputs(policy, tuple(arns), tuple(docs), tags, tuple(transitive), size)


def documents_of(docs: Sequence[str]) -> list[Any]:
    """The session policy documents as parsed JSON for the engine."""
    return [json.loads(d) for d in docs]
