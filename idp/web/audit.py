"""The audit blueprint: ``GET /audit/keys`` (the public keys that verify the trail's digests)
and ``POST /cloudtrail`` (CloudTrail's ``LookupEvents``)."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from werkzeug.wrappers import Response

from idp.app import Components
from idp.web.context import components

bp = Blueprint("audit", __name__)


def init_app(app: Flask, comps: Components) -> None:
    app.register_blueprint(bp)


@bp.get("/audit/keys")
def audit_keys() -> Response:
    """Every public key that ever signed a digest of this trail (like CloudTrail's
    ``ListPublicKeys``: ``Fingerprint`` and the DER ``Value`` in base64), and its PEM."""
    audit = components().config.audit
    public = audit.keys_dir / "public"
    keys = []
    for pem in sorted(public.glob("*.pem")) if audit.sink == "trail" and public.is_dir() else []:
        text = pem.read_text()
        der = "".join(line for line in text.splitlines() if not line.startswith("-----"))
        keys.append({"Fingerprint": pem.stem, "Value": der, "Pem": text})
    resp = jsonify(PublicKeyList=keys)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp
