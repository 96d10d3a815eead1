"""werkzeug's development server, keeping the SSO portal's bearer-token header.

The SSO portal API (botocore model ``sso`` 2019-06-10) sends the token in
``x-amz-sso_bearer_token``, a header name with an underscore.  werkzeug's server (like
gunicorn's default ``header_map = drop``) drops every such header, because ``-`` and ``_`` map
to the same CGI variable (RFC 3875 §4.1.18) and one could pass for the other.  This handler
keeps exactly that one header, and only when it is unambiguous: sent once, and not also as
``X-Amz-Sso-Bearer-Token``; otherwise neither reaches the app."""

from __future__ import annotations

from typing import Any

from werkzeug.serving import WSGIRequestHandler

SSO_HEADER = "x-amz-sso_bearer_token"
SSO_ENVIRON = "HTTP_X_AMZ_SSO_BEARER_TOKEN"


class RequestHandler(WSGIRequestHandler):
    def make_environ(self) -> Any:
        environ = super().make_environ()
        values = [v for k, v in self.headers.items() if k.lower() == SSO_HEADER]
        if values:
            if len(values) == 1 and SSO_ENVIRON not in environ:
                environ[SSO_ENVIRON] = values[0].replace("\r\n", "")
            else:
                environ.pop(SSO_ENVIRON, None)
        return environ
