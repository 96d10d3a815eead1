"""``idp mock-s3``: an in-memory S3-compatible endpoint that trusts this IdP's STS.

Path-style requests only (``/bucket/key``): ListBuckets, CreateBucket, HeadBucket,
ListObjectsV2, GetObject, HeadObject, PutObject, DeleteObject -- enough for
``boto3.client("s3", endpoint_url=…)`` and ``aws s3 cp/ls``.  Every request is handed, whole
(method, path, query, headers, body), to the IdP's decision endpoint ``POST /sts/decide``,
which verifies its SigV4 signature with the STS credentials it issued and evaluates the
session's policies for the S3 action and resource (Amazon S3 User Guide, "Actions, resources,
and condition keys for Amazon S3").  The mock authenticates there as a confidential OAuth client
of the IdP.  A denial is S3's ``AccessDenied`` XML (403); a bad signature, an unknown or expired
key answer S3's own codes.  Nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from idp.sts.client import DecisionClient

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_ERROR_STATUS = {"AccessDenied": 403, "SignatureDoesNotMatch": 403, "InvalidAccessKeyId": 403,
                 "ExpiredToken": 400, "InvalidToken": 400, "NoSuchBucket": 404,
                 "NoSuchKey": 404, "BucketAlreadyOwnedByYou": 409, "InvalidRequest": 400,
                 "MethodNotAllowed": 405, "MissingSecurityHeader": 400, "InternalError": 500}

_FROM_STS = {"InvalidClientTokenId": "InvalidAccessKeyId", "RequestExpired": "AccessDenied"}
"""The decision endpoint answers with STS codes; S3 names two of them differently."""


@dataclass
class StoredObject:
    body: bytes
    content_type: str
    etag: str
    modified: float


class S3Error(Exception):
    def __init__(self, code: str, message: str, resource: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.resource = code, message, resource


def _xml(body: str) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, 200,
                    mimetype="application/xml")


def error_response(exc: S3Error, request_id: str) -> Response:
    """S3's error document (Amazon S3 API Reference, "Error responses")."""
    body = (f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>"
            f"<Resource>{escape(exc.resource)}</Resource><RequestId>{request_id}</RequestId>"
            "</Error>")
    resp = Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body,
                    _ERROR_STATUS.get(exc.code, 400), mimetype="application/xml")
    resp.headers["x-amz-request-id"] = request_id
    return resp


def decode_aws_chunked(body: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (``<hex-size>[;chunk-signature=…]\\r\\n<data>
    \\r\\n`` … ``0\\r\\n`` then trailers; Amazon S3 API Reference, "Signature calculations for
    the Authorization header: transferring payload in multiple chunks")."""
    out, pos = bytearray(), 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise S3Error("InvalidRequest", "malformed aws-chunked body")
        size = int(body[pos:end].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


class MockS3:
    """The WSGI application; ``buckets`` are created on first use by ``create_bucket``."""

    def __init__(self, issuer: str, *, client_id: str, client_secret: str,
                 buckets: Iterable[str] = ()) -> None:
        self.decider = DecisionClient(issuer, client_id=client_id, client_secret=client_secret)
        self.buckets: dict[str, dict[str, StoredObject]] = {b: {} for b in buckets}
        self.lock = threading.Lock()
        self._ids = 0

    # -- direct seeding (for tests) ---------------------------------------------------------
    def put_object(self, bucket: str, key: str, body: bytes,
                   content_type: str = "binary/octet-stream") -> None:
        with self.lock:
            self.buckets.setdefault(bucket, {})[key] = StoredObject(
                body, content_type, hashlib.md5(body, usedforsecurity=False).hexdigest(),
                time.time())

    # -- WSGI -------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        request = Request(environ)
        with self.lock:
            self._ids += 1
            request_id = f"MOCKS3{self._ids:010d}"
        try:
            resp = self.handle(request)
        except S3Error as exc:
            resp = error_response(exc, request_id)
        resp.headers["x-amz-request-id"] = request_id
        return resp(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.environ.get("RAW_URI", request.full_path).split("?", 1)[0] \
            or request.path
        parts = unquote(request.path).lstrip("/").split("/", 1)
        bucket = parts[0]
        key = parts[1] if len(parts) > 1 else ""
        method = request.method
        action, resource = self._action(method, bucket, key, request.args)
        raw_body = request.get_data(cache=True)
        self._authorize(request, path, raw_body, action, resource)
        body = raw_body
        if "aws-chunked" in request.headers.get("Content-Encoding", "") or \
                request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
            body = decode_aws_chunked(raw_body)
        return self._dispatch(method, bucket, key, request, body)

    def _action(self, method: str, bucket: str, key: str, args: Any) -> tuple[str, str]:
        """The S3 action and resource ARN of a path-style request."""
        if not bucket:
            if method == "GET":
                return "s3:ListAllMyBuckets", "*"
            raise S3Error("MethodNotAllowed", "unsupported request on the service")
        if not key:
            table = {"GET": "s3:ListBucket", "HEAD": "s3:ListBucket", "PUT": "s3:CreateBucket"}
            if method not in table:
                raise S3Error("MethodNotAllowed", f"{method} on a bucket is not supported",
                              f"/{bucket}")
            return table[method], f"arn:aws:s3:::{bucket}"
        table = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject",
                 "DELETE": "s3:DeleteObject"}
        if method not in table:
            raise S3Error("MethodNotAllowed", f"{method} on an object is not supported")
        return table[method], f"arn:aws:s3:::{bucket}/{key}"

    def _authorize(self, request: Request, path: str, body: bytes, action: str,
                   resource: str) -> None:
        """Ask the IdP; deny on any doubt (no answer is a denial, never an allow)."""
        headers = {k: v for k, v in request.headers.items()}
        if "Authorization" not in headers and "X-Amz-Signature" not in request.args:
            raise S3Error("AccessDenied", "Anonymous access is not allowed", path)
        query = request.query_string.decode("latin-1")
        try:
            answer = self.decider.decide(request.method, path, query, headers, body,
                                         action=action, resource=resource, service="s3",
                                         source_ip=request.remote_addr or "")
        except Exception as exc:
            raise S3Error("AccessDenied", f"the identity provider did not answer ({exc})",
                          path) from exc
        if answer.allowed:
            return
        error = answer.raw.get("error") or {}
        code = str(error.get("code") or "AccessDenied")
        code = _FROM_STS.get(code, code)
        if code not in _ERROR_STATUS:
            code = "AccessDenied"
        raise S3Error(code, str(error.get("message") or "Access Denied"), path)

    def _dispatch(self, method: str, bucket: str, key: str, request: Request,
                  body: bytes) -> Response:
        if not bucket:
            return self._list_buckets()
        with self.lock:
            objects = self.buckets.get(bucket)
        if not key and method == "PUT":
            with self.lock:
                self.buckets.setdefault(bucket, {})
            return Response("", 200)
        if objects is None:
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", f"/{bucket}")
        if not key:
            if method == "HEAD":
                return Response("", 200)
            return self._list_objects(bucket, objects, request.args.get("prefix", ""))
        if method == "PUT":
            ctype = request.headers.get("Content-Type", "binary/octet-stream")
            self.put_object(bucket, key, body, ctype)
            resp = Response("", 200)
            resp.headers["ETag"] = f'"{self.buckets[bucket][key].etag}"'
            return resp
        with self.lock:
            obj = objects.get(key)
            if method == "DELETE":
                objects.pop(key, None)
                return Response("", 204)
        if obj is None:
            raise S3Error("NoSuchKey", "The specified key does not exist.", f"/{bucket}/{key}")
        resp = Response(b"" if method == "HEAD" else obj.body, 200, mimetype=obj.content_type)
        resp.headers["ETag"] = f'"{obj.etag}"'
        resp.headers["Last-Modified"] = formatdate(obj.modified, usegmt=True)
        resp.headers["Content-Length"] = str(len(obj.body))
        return resp

    def _list_buckets(self) -> Response:
        with self.lock:
            names = sorted(self.buckets)
        items = "".join(f"<Bucket><Name>{escape(n)}</Name><CreationDate>{_iso(0)}"
                        "</CreationDate></Bucket>" for n in names)
        return _xml(f'<ListAllMyBucketsResult xmlns="{S3_NS}"><Owner><ID>mock</ID></Owner>'
                    f"<Buckets>{items}</Buckets></ListAllMyBucketsResult>")

    def _list_objects(self, bucket: str, objects: dict[str, StoredObject],
                      prefix: str) -> Response:
        """ListObjectsV2 (Amazon S3 API Reference), without pagination."""
        with self.lock:
            keys = sorted((k, o) for k, o in objects.items() if k.startswith(prefix))
        items = "".join(
            f"<Contents><Key>{escape(k)}</Key><LastModified>{_iso(o.modified)}</LastModified>"
            f"<ETag>&quot;{o.etag}&quot;</ETag><Size>{len(o.body)}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>" for k, o in keys)
        return _xml(f'<ListBucketResult xmlns="{S3_NS}"><Name>{escape(bucket)}</Name>'
                    f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(keys)}</KeyCount>"
                    f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{items}"
                    "</ListBucketResult>")
