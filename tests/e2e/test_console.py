"""The web console in Debian's Chromium, against a real server and real agents."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import update

import shipyard
from shipyard.store import schema
from tests.conftest import LiveServer
from tests.e2e.conftest import Fleet, Uploader
from tests.e2e.console_browser import (
    browser,
    by_id,
    css,
    press,
    screenshot,
    sign_in,
    sign_out,
    text_of,
)
from tests.e2e.test_alarms_prometheus import bundle, waiting_validate
from tests.e2e.test_in_place import setup_group
from tests.support import call_extension, wait_until

__all__ = ["browser"]  # the fixture, imported for the tests below

FAILING = "#!/bin/sh\necho 'checking the database'\necho 'boom: database unreachable' >&2\nexit 3\n"


def start(fleet: Fleet, revision: dict[str, Any]) -> str:
    deployment_id: str = fleet.cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision
    )["deploymentId"]
    return deployment_id


# Read in one script each: the page re-renders as the stream updates it, so an element
# found in one call may be gone by the next.
def shown_status(driver: Any) -> str:
    script = "const s = document.getElementById('status'); return s ? s.textContent : ''"
    return str(driver.execute_script(script))


def event_status(driver: Any, host: str, event: str) -> str:
    script = (
        "const e = document.querySelector(`section[data-target='${arguments[0]}'] "
        "li[data-event='${arguments[1]}']`); return e ? e.dataset.status : ''"
    )
    return str(driver.execute_script(script, host, event))


def submit_form(driver: Any, action: str, csrf: str | None = None) -> None:
    """Submit a form to ``action`` as the page would, with the page's CSRF token unless
    ``csrf`` is given (a forged one)."""
    script = (
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "const i = document.createElement('input'); i.type = 'hidden'; i.name = 'csrf';"
        "i.value = arguments[1] ?? document.getElementById('actions').dataset.csrf;"
        "f.append(i); document.body.append(f); f.submit();"
    )
    driver.execute_script(script, action, csrf)


def action_buttons(driver: Any) -> list[tuple[str, bool, str]]:
    """(id, enabled, title) of every action button."""
    script = (
        "return [...document.querySelectorAll('#actions button')]"
        ".map(b => [b.id, !b.disabled, b.title])"
    )
    return [tuple(b) for b in driver.execute_script(script)]  # type: ignore[misc]


def test_watch_a_deployment_live_to_succeeded_then_sign_out(
    fleet: Fleet, upload: Uploader, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    sign_in(browser, server)
    assert "Nothing deployed yet" in text_of(browser, "empty")
    screenshot(browser, "empty", tmp_path)
    setup_group(fleet, ["web-1", "web-2"])
    release = tmp_path / "release"
    deployment_id = start(fleet, upload("v1.zip", bundle("v1", waiting_validate(release))))

    browser.get(f"{server.url}/console/deployments/{deployment_id}")
    browser.execute_script("window.__sameDocument = true")
    wait_until(
        lambda: event_status(browser, "web-1", "ValidateService") == "InProgress",
        lambda: f"live: {browser.get_log('browser')} {text_of(browser, 'main')}",
    )
    assert shown_status(browser) == "InProgress"
    assert "web-1" in text_of(browser, "targets")
    release.touch()
    wait_until(lambda: shown_status(browser) == "Succeeded", "Succeeded on the page", 60)
    assert browser.execute_script("return window.__sameDocument") is True  # never reloaded
    assert event_status(browser, "web-2", "ValidateService") == "Succeeded"
    assert text_of(browser, "health").startswith("2 of 2 hosts healthy")
    assert text_of(browser, "creator") == "admin"
    screenshot(browser, "deployment", tmp_path)

    browser.get(server.url + "/console")
    history = text_of(browser, "history")
    assert deployment_id in history and "Succeeded" in history and "admin" in history
    screenshot(browser, "overview", tmp_path)
    browser.set_window_size(390, 844)
    screenshot(browser, "overview-phone", tmp_path)
    browser.set_window_size(1280, 900)

    sign_out(browser)
    browser.get(server.url + "/console")
    assert browser.current_url.endswith("/console/login")


def test_a_failed_hook_then_stop_and_roll_back(
    fleet: Fleet, upload: Uploader, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    setup_group(fleet, ["web-1"])
    assert fleet.wait(start(fleet, upload("v1.zip", bundle("v1"))))["status"] == "Succeeded"
    failed = start(fleet, upload("v2.zip", bundle("v2", FAILING)))
    sign_in(browser, server)
    browser.get(f"{server.url}/console/deployments/{failed}")
    wait_until(lambda: shown_status(browser) == "Failed", "the failure on the page", 60)
    event = css(browser, 'li[data-event="ValidateService"]')[0]
    wait_until(lambda: "boom: database unreachable" in event.text, "the hook's output", 10)
    assert "checking the database" in event.text
    assert "ScriptFailed" in event.text  # the failed event's error
    browser.execute_script("arguments[0].scrollIntoView()", css(browser, "#targets")[0])
    screenshot(browser, "failed-hook", tmp_path)

    release = tmp_path / "release"
    running = start(fleet, upload("v3.zip", bundle("v3", waiting_validate(release))))
    browser.get(f"{server.url}/console/deployments/{running}")
    wait_until(lambda: event_status(browser, "web-1", "ValidateService") == "InProgress", "v3")
    press(browser, "action-stop-rollback")
    wait_until(
        lambda: (
            call_extension(server, "ShipyardListAudit", {})["entries"][0]["action"]
            == "StopDeployment"
        ),
        "the stop to be recorded",
        10,
    )
    release.touch()
    wait_until(lambda: shown_status(browser) == "Stopped", "Stopped on the page", 60)
    script = "const a = document.querySelector('#rollback a'); return a ? a.textContent : ''"
    rollback_id = wait_until(lambda: browser.execute_script(script), "the rollback link", 30)
    assert fleet.wait(rollback_id)["status"] == "Succeeded"
    assert fleet.cd.get_deployment(deploymentId=running)["deploymentInfo"]["status"] == "Stopped"


def test_start_a_deployment_from_the_page_and_approve_it(
    fleet: Fleet, upload: Uploader, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    setup_group(fleet, ["web-1"])
    options = {"applicationName": "shop", "deploymentGroupName": "web", "requireApproval": True}
    call_extension(server, "ShipyardSetDeploymentGroupOptions", options)
    revision = upload("v1.zip", bundle("v1"))
    fleet.cd.register_application_revision(applicationName="shop", revision=revision)

    sign_in(browser, server)
    browser.get(server.url + "/console/deploy")
    by_id(browser, "description").send_keys("from the console")
    screenshot(browser, "start", tmp_path)
    by_id(browser, "start").click()
    wait_until(lambda: "/console/deployments/" in browser.current_url, "the deployment page")
    deployment_id = browser.current_url.rsplit("/", 1)[1]
    wait_until(lambda: css(browser, "#action-approve"), "the Approve button", 10)
    assert "Waiting for approval" in text_of(browser, "messages")
    press(browser, "action-approve")
    wait_until(lambda: shown_status(browser) == "Succeeded", "Succeeded after approval", 60)
    info = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["description"] == "from the console"
    audit = call_extension(server, "ShipyardListAudit", {})["entries"]
    assert [e["action"] for e in audit[:2]] == ["ShipyardApproveDeployment", "CreateDeployment"]


def test_the_fleet_report_after_two_deployments(
    fleet: Fleet, upload: Uploader, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    setup_group(fleet, ["web-1", "web-2"])
    fleet.add_hosts(["db-1"], {"role": "db"})
    first = start(fleet, upload("v1.zip", bundle("v1")))
    assert fleet.wait(first)["status"] == "Succeeded"
    second = start(fleet, upload("v2.zip", bundle("v2")))
    assert fleet.wait(second)["status"] == "Succeeded"

    sign_in(browser, server)
    browser.get(server.url + "/console/fleet")
    rows = {r.get_attribute("data-host"): r.text for r in css(browser, "#hosts tbody tr")}
    assert sorted(rows) == ["db-1", "web-1", "web-2"]
    assert "shop/web: s3://bundles/v2.zip" in rows["web-1"]
    assert "nothing deployed" in rows["db-1"]
    assert f"shipyard {shipyard.__version__}" in rows["web-1"]  # the agent's own version
    history = css(browser, ".group-history")[0].text
    assert history.index(second) < history.index(first)
    assert "web-1, web-2" in history
    screenshot(browser, "fleet", tmp_path)

    browser.get(server.url + "/console/fleet?tag=role%3Ddb")
    assert [r.get_attribute("data-host") for r in css(browser, "#hosts tbody tr")] == ["db-1"]
    csv_url = by_id(browser, "csv").get_attribute("href")
    cookie = browser.get_cookie("shipyard_session")["value"]
    request = urllib.request.Request(csv_url, headers={"cookie": f"shipyard_session={cookie}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        lines = response.read().decode().splitlines()
    assert lines[0] == "instance,agent_status,agent_version,last_seen,tags,group,revision,since"
    assert len(lines) == 2 and lines[1].startswith("db-1,")


def held_deployment(fleet: Fleet, upload: Uploader, release: Path) -> str:
    """A deployment to web-1 whose ValidateService runs until ``release`` exists."""
    setup_group(fleet, ["web-1"])
    return start(fleet, upload("v1.zip", bundle("v1", waiting_validate(release))))


def viewer_keys(server: LiveServer) -> tuple[str, str]:
    answer = call_extension(server, "ShipyardCreateUser", {"userName": "vic", "role": "viewer"})
    return answer["accessKeyId"], answer["secretAccessKey"]


def test_a_viewer_cannot_press_what_they_may_not_do(
    fleet: Fleet, upload: Uploader, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    release = tmp_path / "release"
    deployment_id = held_deployment(fleet, upload, release)
    sign_in(browser, server, viewer_keys(server))
    assert text_of(browser, "who") == "vic (viewer)"
    browser.get(f"{server.url}/console/deployments/{deployment_id}")
    buttons = wait_until(lambda: action_buttons(browser), "the action buttons", 10)
    assert [b[0] for b in buttons] == [
        "action-stop",
        "action-stop-rollback",
        "action-pause",
        "action-rollback",
    ]
    assert {(enabled, title) for _, enabled, title in buttons} == {
        (False, "needs the deployer role")
    }
    screenshot(browser, "viewer", tmp_path)
    # The same form sent anyway (as a page with the button enabled by hand would) is
    # refused by the server.
    submit_form(browser, f"/console/deployments/{deployment_id}/stop")
    wait_until(lambda: css(browser, "#error-message"), "the refusal", 10)
    message = text_of(browser, "error-message")
    assert "codedeploy:StopDeployment" in message and "needs the deployer role" in message
    browser.get(server.url + "/console/deploy")
    assert not by_id(browser, "start").is_enabled()
    release.touch()
    assert fleet.wait(deployment_id)["status"] == "Succeeded"  # nothing stopped it


def test_csrf_and_session_expiry(
    fleet: Fleet, upload: Uploader, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    release = tmp_path / "release"
    deployment_id = held_deployment(fleet, upload, release)
    sign_in(browser, server)
    browser.get(f"{server.url}/console/deployments/{deployment_id}")
    wait_until(lambda: css(browser, "#action-stop"), "the Stop button", 10)
    submit_form(browser, f"/console/deployments/{deployment_id}/stop", csrf="forged")
    wait_until(lambda: css(browser, "#error-message"), "the refusal", 10)
    assert text_of(browser, "error-message") == "This form has expired: reload the page."
    # Without the browser's cookie: the sign-in page, not the deployment.
    with urllib.request.urlopen(f"{server.url}/console/deployments/{deployment_id}") as response:
        assert response.url.endswith("/console/login")
    release.touch()
    assert fleet.wait(deployment_id)["status"] == "Succeeded"

    # The session's time runs out (its expiry moved into the past): the next page asks
    # to sign in again.
    with server.services.db.tx() as conn:
        conn.execute(update(schema.console_sessions).values(expires=0.0))
    browser.get(server.url + "/console/fleet")
    assert browser.current_url.endswith("/console/login?expired=1")
    assert text_of(browser, "login-message") == "Your session has ended: sign in again."
