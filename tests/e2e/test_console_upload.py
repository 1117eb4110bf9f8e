"""Starting a deployment in the console from a zip the browser uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import Fleet, make_bundle
from tests.e2e.console_browser import browser, by_id, sign_in, sign_out, text_of
from tests.e2e.test_alarms_prometheus import bundle
from tests.e2e.test_console import shown_status, viewer_keys
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
    assert (server.services.config.data_dir / "bundles" / "console-uploads").is_dir()
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


def test_a_viewer_s_upload_and_a_forged_one_are_refused(
    fleet: Fleet, browser: Any, tmp_path: Path
) -> None:
    server = fleet.server
    setup_group(fleet, [])
    archive = tmp_path / "site.zip"
    archive.write_bytes(bundle("v1"))
    sign_in(browser, server, viewer_keys(server))
    browser.get(server.url + "/console/deploy")
    assert not by_id(browser, "upload-start").is_enabled()
    # Sent anyway, as a page with the button enabled by hand would.
    browser.execute_script("document.getElementById('upload-start').disabled = false")
    by_id(browser, "bundle").send_keys(str(archive))
    by_id(browser, "upload-start").click()
    message = wait_until(lambda: browser.find_elements("id", "deploy-message"), "the refusal")
    assert "s3:PutObject" in message[0].text and "deployer" in message[0].text, message[0].text

    sign_out(browser)
    sign_in(browser, server)
    browser.get(server.url + "/console/deploy")
    browser.execute_script("document.querySelector('#upload-form [name=csrf]').value = 'x'")
    by_id(browser, "bundle").send_keys(str(archive))
    by_id(browser, "upload-start").click()
    wait_until(lambda: browser.find_elements("id", "error-message"), "the refusal", 10)
    assert text_of(browser, "error-message") == "This form has expired: reload the page."
    assert fleet.cd.list_application_revisions(applicationName="shop")["revisions"] == []
    assert not (server.services.config.data_dir / "bundles" / "console-uploads").exists()
