"""AWS-style STS: AssumeRole*, GetCallerIdentity, GetSessionToken, GetAccessKeyInfo,
DecodeAuthorizationMessage over the AWS Query protocol, SigV4 verification, and the decision
endpoint for resource servers (DESIGN.md, "sts/").  No web framework here: ``idp.web.sts``
translates HTTP to :class:`QueryRequest` and back."""

from idp.sts.authz import DecisionQuery, decide
from idp.sts.client import Answer, DecisionClient
from idp.sts.credentials import CredentialStore, LongTermKey, Session
from idp.sts.errors import StsError
from idp.sts.protocol import QueryRequest, Result, build_request
from idp.sts.service import StsService, StsSettings

__all__ = ["Answer", "CredentialStore", "DecisionClient", "DecisionQuery", "LongTermKey",
           "QueryRequest", "Result", "Session", "StsError", "StsService", "StsSettings",
           "build_request", "decide"]
