"""Reading STS XML answers in tests."""

from __future__ import annotations

from lxml import etree

from idp.sts import Result

NS = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}


def code(r: Result) -> str:
    root = etree.fromstring(r.body.encode())
    return str(root.findtext("s:Error/s:Code", namespaces=NS))


def field(r: Result, path: str) -> str | None:
    root = etree.fromstring(r.body.encode())
    return root.findtext(".//" + "/".join("s:" + p for p in path.split("/")), namespaces=NS)


def creds(r: Result) -> tuple[str, str, str]:
    assert r.status == 200, r.body
    return (str(field(r, "Credentials/AccessKeyId")), str(field(r, "Credentials/SecretAccessKey")),
            str(field(r, "Credentials/SessionToken")))
