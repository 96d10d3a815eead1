"""Pure IAM: ARNs, the IAM model, the policy language, evaluation and role mapping.

No web framework here (DESIGN.md): ``idp.saml``, ``idp.oidc`` and ``idp.sts`` call
:func:`evaluate` and :meth:`IamModel.roles_for`; ``idp.web`` exposes :mod:`idp.iam.query`.
"""

from idp.iam.context import SessionDescription, build_context
from idp.iam.decision import Decision, MatchedStatement, PolicyType, Request, Response
from idp.iam.errors import IamError, MalformedPolicyDocument, NoSuchEntity
from idp.iam.evaluate import PolicySet, evaluate
from idp.iam.mapping import MappingRule, RoleGrant
from idp.iam.model import IamModel, OidcProvider, Role, SamlProvider, demo_model
from idp.iam.policy import Policy, parse_policy
from idp.iam.validation import PolicyKind

__all__ = [
    "Decision", "IamError", "IamModel", "MalformedPolicyDocument", "MappingRule",
    "MatchedStatement", "NoSuchEntity", "OidcProvider", "Policy", "PolicyKind", "PolicySet",
    "PolicyType", "Request", "Response", "Role", "RoleGrant", "SamlProvider",
    "SessionDescription", "build_context", "demo_model", "evaluate", "parse_policy",
]
