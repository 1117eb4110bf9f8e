"""A Lambda canary on the embedded function host, its weights charted on the console's
deployment page as the server-sent events bring them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.console_browser import browser, css, screenshot, sign_in, text_of
from tests.e2e.test_console import shown_status
from tests.e2e.test_lambda_deployments import APP, CANARY, FUNCTION, HOOKS, cd, lam, server
from tests.lambda_support import appspec, create_group, revision
from tests.support import wait_until

pytestmark = pytest.mark.e2e
__all__ = ["browser", "cd", "lam", "server"]  # the fixtures, imported for the test below


def chart_steps(driver: Any) -> list[tuple[int, float]]:
    """(weight, y) of every point where the chart's weight changed, in time order."""
    script = (
        "return [...document.querySelectorAll('#traffic-chart circle.step')]"
        ".map(c => [Number(c.dataset.weight), Number(c.getAttribute('cy'))])"
    )
    return [(int(w), float(y)) for w, y in driver.execute_script(script)]


def test_a_canary_s_weights_move_on_the_chart(
    server: LiveServer, lam: Any, cd: Any, browser: Any, tmp_path: Path
) -> None:
    lam.create_alias(FunctionName=FUNCTION, Name="charted", FunctionVersion="1")
    create_group(cd, APP, "charted", CANARY)
    content = appspec(FUNCTION, "charted", "1", "2", {"BeforeAllowTraffic": HOOKS["Succeeded"]})
    deployment_id = cd.create_deployment(
        applicationName=APP, deploymentGroupName="charted", revision=revision(content)
    )["deploymentId"]

    sign_in(browser, server)
    browser.get(f"{server.url}/console/deployments/{deployment_id}")
    wait_until(
        lambda: 30 in [w for w, _ in chart_steps(browser)],
        lambda: f"the canary step on the chart: {chart_steps(browser)}",
        30,
    )
    assert "version 2 30%, version 1 70%" in text_of(browser, "traffic-split")
    wait_until(lambda: shown_status(browser) == "Succeeded", "Succeeded on the page", 60)
    steps = chart_steps(browser)
    # The page opened before the shift (0 %) or during its first step: then 30 %, then 100 %.
    assert [w for w, _ in steps] in ([0, 30, 100], [30, 100]), steps
    heights = [y for _, y in steps]
    assert heights == sorted(heights, reverse=True) and len(set(heights)) == len(heights)
    line = css(browser, "#traffic-chart polyline.weight")[0].get_attribute("points")
    assert all(f",{y:.1f}" in line for y in heights), line  # the line passes every step
    assert "version 2 100%, version 1 0%" in text_of(browser, "traffic-split")
    browser.execute_script("document.getElementById('traffic-h').scrollIntoView()")
    screenshot(browser, "traffic", tmp_path)
