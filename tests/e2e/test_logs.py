"""Hook script output end to end: the 4 KB tail on the lifecycle event, the whole output
through the ShipyardGetLifecycleEventLog extension, the agent's scripts.log on disk, and
output streamed to the server while the script is still running."""

from __future__ import annotations

import contextlib
import re
import urllib.error
from typing import Any

from tests.e2e.conftest import Fleet, Uploader, make_bundle
from tests.e2e.test_failures import event_of
from tests.e2e.test_in_place import setup_group
from tests.support import call_extension, wait_until

# "2024-05-01 12:00:00 [stdout]text", as the stock agent writes scripts.log.
LOG_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (LifecycleEvent - \w+|Script - \S+|\[(stdout|stderr)\].*)"
)
LINES = 20000  # `seq 1 20000` prints 108,894 bytes


def hook_bundle(script: str, event: str = "AfterInstall") -> bytes:
    return make_bundle(
        {
            "appspec.yml": (
                f"version: 0.0\nos: linux\nhooks:\n  {event}:\n"
                "    - location: scripts/hook.sh\n      timeout: 30\n"
            ),
            "scripts/hook.sh": script,
        }
    )


def event_log(fleet: Fleet, deployment_id: str, target: str, event: str) -> str:
    answer = call_extension(
        fleet.server,
        "ShipyardGetLifecycleEventLog",
        {"deploymentId": deployment_id, "targetId": target, "lifecycleEventName": event},
    )
    [entry] = answer["events"]
    assert entry["lifecycleEventName"] == event
    return str(entry["log"])


def messages(log: str) -> list[str]:
    """The lines of a scripts.log-formatted text without their timestamps."""
    found = []
    for line in log.splitlines():
        assert LOG_LINE.fullmatch(line), f"not a scripts.log line: {line!r}"
        found.append(line[20:])
    return found


def test_large_output_tail_is_capped_and_whole_log_is_kept(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["log-1"])
    script = f"#!/bin/sh\necho starting up >&2\nseq 1 {LINES}\n"
    deployment_id = fleet.cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision=upload("loud.zip", hook_bundle(script)),
    )["deploymentId"]
    info = fleet.wait(deployment_id)
    assert info["status"] == "Succeeded", info

    target = fleet.targets(deployment_id)["log-1"]
    tail = event_of(target, "AfterInstall")["diagnostics"]["logTail"]
    assert 3000 < len(tail.encode()) <= 4096
    assert tail.endswith(f"[stdout]{LINES}\n")
    numbers = [int(line.removeprefix("[stdout]")) for line in tail.splitlines()]
    assert numbers == list(range(numbers[0], LINES + 1))  # the last lines, none missing

    whole = event_log(fleet, deployment_id, "log-1", "AfterInstall")
    assert len(whole) > 64 * 1024
    lines = messages(whole)
    assert lines[:2] == ["LifecycleEvent - AfterInstall", "Script - scripts/hook.sh"]
    assert "[stderr]starting up" in lines
    stdout = [int(line.removeprefix("[stdout]")) for line in lines if line.startswith("[stdout]")]
    assert stdout == list(range(1, LINES + 1))

    # The agent's own scripts.log holds the same lines (the only hook of this deployment).
    group = fleet.cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")
    group_id = group["deploymentGroupInfo"]["deploymentGroupId"]
    host = fleet.host("log-1")
    scripts_log = host.home / "deployment-root" / group_id / deployment_id / "logs" / "scripts.log"
    on_disk = scripts_log.read_text()
    assert messages(on_disk) == lines
    assert on_disk == whole


def test_output_is_streamed_while_the_hook_runs(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["live-1"])
    script = "#!/bin/sh\necho first line\nsleep 2\necho second line\n"
    deployment_id = fleet.cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision=upload("live.zip", hook_bundle(script, "ApplicationStart")),
    )["deploymentId"]

    last = [""]

    def streamed() -> str | None:
        with contextlib.suppress(urllib.error.HTTPError):  # the target is not planned yet
            last[0] = event_log(fleet, deployment_id, "live-1", "ApplicationStart")
        return last[0] if "first line" in last[0] else None

    log = wait_until(streamed, lambda: f"output streamed; last log {last[0]!r}", 30)
    # The first line arrived while the script was still sleeping before its second one.
    running: Any = fleet.cd.get_deployment_target(deploymentId=deployment_id, targetId="live-1")
    event = event_of(running["deploymentTarget"]["instanceTarget"], "ApplicationStart")
    assert event["status"] == "InProgress"
    assert "second line" not in log

    info = fleet.wait(deployment_id)
    assert info["status"] == "Succeeded", info
    final = messages(event_log(fleet, deployment_id, "live-1", "ApplicationStart"))
    assert final[-2:] == ["[stdout]first line", "[stdout]second line"]
