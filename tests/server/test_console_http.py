"""The console over plain HTTP: redirects, the session cookie, sign-in failures,
foreign origins, revoked keys, and pages that never show a traceback."""

from __future__ import annotations

import http.client
import urllib.parse
from urllib.parse import urlsplit

from tests.conftest import LiveServer, on_both_databases
from tests.support import call_extension


def request(
    server: LiveServer,
    method: str,
    path: str,
    body: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    data = urllib.parse.urlencode(body).encode() if body is not None else None
    sent = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
    conn.request(method, path, body=data, headers=sent)
    response = conn.getresponse()
    response.read()
    conn.close()  # the status and headers stay readable
    return response


def sign_in(server: LiveServer, keys: tuple[str, str] | None = None) -> str:
    key_id, secret = keys or (server.access_key_id, server.secret_access_key)
    response = request(
        server, "POST", "/console/login", {"access_key_id": key_id, "secret": secret}
    )
    assert response.status == 303 and response.getheader("location") == "/console"
    cookie = response.getheader("set-cookie") or ""
    return cookie.split(";", 1)[0]


def test_browsers_at_the_root_go_to_the_console_and_s3_stays(live_server: LiveServer) -> None:
    response = request(live_server, "GET", "/", headers={"accept": "text/html,*/*"})
    assert (response.status, response.getheader("location")) == (302, "/console")
    assert live_server.client("s3").list_buckets()["Buckets"] == []  # signed GET /: S3's
    response = request(live_server, "GET", "/console")
    assert (response.status, response.getheader("location")) == (303, "/console/login")


def test_the_session_cookie(live_server: LiveServer) -> None:
    key_id, secret = live_server.access_key_id, live_server.secret_access_key
    response = request(
        live_server, "POST", "/console/login", {"access_key_id": key_id, "secret": secret}
    )
    cookie = response.getheader("set-cookie") or ""
    assert cookie.startswith("shipyard_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console", "max-age=28800"} <= flags
    assert "secure" not in flags  # plain HTTP here; under TLS the cookie is Secure
    assert secret not in cookie
    page = request(live_server, "GET", "/console", headers={"cookie": cookie.split(";")[0]})
    assert page.status == 200
    assert "frame-ancestors 'none'" in (page.getheader("content-security-policy") or "")


def test_wrong_keys_and_foreign_origins_are_refused(live_server: LiveServer) -> None:
    wrong = {"access_key_id": live_server.access_key_id, "secret": "not-it"}
    response = request(live_server, "POST", "/console/login", wrong)
    assert response.status == 401 and response.getheader("set-cookie") is None
    unknown = {"access_key_id": "AKSYNOSUCHKEY0000000", "secret": "x"}
    assert request(live_server, "POST", "/console/login", unknown).status == 401
    good = {"access_key_id": live_server.access_key_id, "secret": live_server.secret_access_key}
    foreign = request(
        live_server, "POST", "/console/login", good, {"origin": "https://evil.example"}
    )
    assert foreign.status == 403 and foreign.getheader("set-cookie") is None
    arn = "arn:aws:sts::000000000000:assumed-role/shipyard/web-1"
    live_server.client().register_on_premises_instance(instanceName="web-1", iamSessionArn=arn)
    host = call_extension(
        live_server, "ShipyardIssueInstanceCredentials", {"instanceName": "web-1"}
    )
    as_host = {"access_key_id": host["accessKeyId"], "secret": host["secretAccessKey"]}
    assert request(live_server, "POST", "/console/login", as_host).status == 401


@on_both_databases
def test_a_revoked_key_ends_its_sessions_at_once(live_server: LiveServer) -> None:
    answer = call_extension(live_server, "ShipyardCreateUser", {"userName": "ann", "role": "admin"})
    cookie = sign_in(live_server, (answer["accessKeyId"], answer["secretAccessKey"]))
    assert request(live_server, "GET", "/console/fleet", headers={"cookie": cookie}).status == 200
    call_extension(live_server, "ShipyardRevokeUser", {"userName": "ann"})
    after = request(live_server, "GET", "/console/fleet", headers={"cookie": cookie})
    assert (after.status, after.getheader("location")) == (303, "/console/login?expired=1")


def test_errors_are_one_sentence_pages(live_server: LiveServer) -> None:
    cookie = sign_in(live_server)
    missing = request(live_server, "GET", "/console/deployments/d-NOPE", headers={"cookie": cookie})
    assert missing.status == 404
    big = {"access_key_id": "x" * 70_000, "secret": "y"}
    assert request(live_server, "POST", "/console/login", big).status == 413


@on_both_databases
def test_the_overview_of_a_group_never_deployed(live_server: LiveServer) -> None:
    cd = live_server.client()
    cd.create_application(applicationName="shop")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
    )
    cd.create_application(applicationName="blog")  # and one with no group at all
    cookie = sign_in(live_server)
    for path in ("/console", "/console/fleet", "/console/deploy", "/console/audit"):
        assert request(live_server, "GET", path, headers={"cookie": cookie}).status == 200, path
