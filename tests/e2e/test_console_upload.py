"""Starting a deployment in the console from a zip the browser uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import Fleet, make_bundle
from tests.e2e.console_browser import browser, by_id, sign_in
from tests.e2e.test_alarms_prometheus import bundle
from tests.e2e.test_console import shown_status
from tests.e2e.test_in_place import setup_group
from tests.support import call_extension, wait_until

__all__ = ["browser"]  # the fixture, imported for the tests below


def upload_on_page(driver: Any, server_url: str, archive: Path, description: str) -> None:
    driver.get(server_url + "/console/deploy")
    by_id(driver, "bundle").send_keys(str(archive))
    by_id(driver, "upload-description").send_keys(description)
    by_id(driver, "upload-start").click()


def test_upload_a_zip_and_watch_it_deploy(fleet: Fleet, browser: Any, tmp_path: Path) -> None:
    server = fleet.server
    setup_group(fleet, ["web-1"])
    archive = tmp_path / "site.zip"
    archive.write_bytes(bundle("uploaded"))
    sign_in(browser, server)
    upload_on_page(browser, server.url, archive, "from a zip")
    wait_until(lambda: "/console/deployments/" in browser.current_url, "the deployment page")
    deployment_id = browser.current_url.rsplit("/", 1)[1]
    wait_until(lambda: shown_status(browser) == "Succeeded", "Succeeded on the page", 60)

    info = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["description"] == "from a zip"
    location = info["revision"]["s3Location"]
    assert location["bucket"] == "console-uploads" and location["key"].startswith("shop/")
    registered = fleet.cd.list_application_revisions(applicationName="shop")["revisions"]
    assert [r["s3Location"]["key"] for r in registered] == [location["key"]]
    audit = call_extension(server, "ShipyardListAudit", {})["entries"]
    assert [e["action"] for e in audit[:2]] == ["CreateDeployment", "RegisterApplicationRevision"]


def test_an_appspec_typo_is_shown_and_nothing_is_deployed(
    fleet: Fleet, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    setup_group(fleet, [])
    appspec = "version: 0.0\nos: linux\nhoks:\n  ValidateService:\n    - location: v.sh\n"
    archive = tmp_path / "typo.zip"
    archive.write_bytes(make_bundle({"appspec.yml": appspec, "v.sh": "#!/bin/sh\nexit 0\n"}))
    sign_in(browser, server)
    upload_on_page(browser, server.url, archive, "typo")
    message = wait_until(lambda: browser.find_elements("id", "deploy-message"), "the error")
    shown = message[0].text
    assert "hoks" in shown and "hooks" in shown, shown
    assert browser.current_url.endswith("/console/deploy/upload")
    assert by_id(browser, "upload-description").get_attribute("value") == "typo"  # kept
    assert (
        fleet.cd.list_deployments(applicationName="shop", deploymentGroupName="web")["deployments"]
        == []
    )
    assert fleet.cd.list_application_revisions(applicationName="shop")["revisions"] == []
