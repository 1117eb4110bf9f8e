"""The ordered lifecycle events of each kind of deployment (reference §3.4).

Reserved events are carried out by the agent (DownloadBundle, Install) or by the
server (BlockTraffic, AllowTraffic); every other event runs the appspec's scripts.
"""

from __future__ import annotations

IN_PLACE = (
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
)

IN_PLACE_WITH_TRAFFIC_CONTROL = (
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    *IN_PLACE,
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)

# A Lambda deployment's events (reference §3.2): hook functions around the alias shift.
LAMBDA = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")

# An ECS deployment's events (reference codedeploy.md §3.3): Install creates the
# replacement task set, AllowTestTraffic routes the test listener to it, AllowTraffic
# shifts the production listener; the other five are hook functions.
ECS = (
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)

# Events whose scripts come from the last successful revision on the host, and whose
# failures `ignoreApplicationStopFailures` forgives.
STOP_EVENTS = frozenset({"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"})

SERVER_EVENTS = frozenset({"BlockTraffic", "AllowTraffic"})


def events_for(deployment_type: str, deployment_option: str) -> tuple[str, ...]:
    """The per-host event list for a deployment style (server platform)."""
    if deployment_type == "IN_PLACE" and deployment_option == "WITH_TRAFFIC_CONTROL":
        return IN_PLACE_WITH_TRAFFIC_CONTROL
    return IN_PLACE
