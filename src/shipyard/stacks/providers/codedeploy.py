"""AWS::CodeDeploy::Application, DeploymentGroup and DeploymentConfig through the
``codedeploy`` client (CloudFormation's PascalCase properties in the API's camelCase)."""

from __future__ import annotations

from typing import Any

from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.protocol import Current, Outcome, Request

GONE = (
    "ApplicationDoesNotExistException",
    "DeploymentGroupDoesNotExistException",
    "DeploymentConfigDoesNotExistException",
)


def camel(value: Any) -> Any:
    """``{"AutoRollbackConfiguration": {"Enabled": true}}`` →
    ``{"autoRollbackConfiguration": {"enabled": true}}``, all the way down."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


class ApplicationProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        name = props.get("ApplicationName") or request.name
        client = self.clients.client("codedeploy")
        calling(
            f"CreateApplication {name}",
            lambda: client.create_application(
                applicationName=name, computePlatform=props.get("ComputePlatform", "Server")
            ),
        )
        return Outcome(name)

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        return Outcome(current.physical_id)  # only Tags could change in place

    def delete(self, current: Current) -> None:
        client = self.clients.client("codedeploy")
        calling(
            f"DeleteApplication {current.physical_id}",
            lambda: client.delete_application(applicationName=current.physical_id),
            GONE,
        )


class DeploymentGroupProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        name = props.get("DeploymentGroupName") or request.name
        client = self.clients.client("codedeploy")
        calling(
            f"CreateDeploymentGroup {name}",
            lambda: client.create_deployment_group(
                applicationName=props["ApplicationName"],
                deploymentGroupName=name,
                **_settings(props),
            ),
        )
        return Outcome(name)

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        props = request.properties
        client = self.clients.client("codedeploy")
        calling(
            f"UpdateDeploymentGroup {current.physical_id}",
            lambda: client.update_deployment_group(
                applicationName=props["ApplicationName"],
                currentDeploymentGroupName=current.physical_id,
                **_settings(props),
            ),
        )
        return Outcome(current.physical_id)

    def delete(self, current: Current) -> None:
        client = self.clients.client("codedeploy")
        calling(
            f"DeleteDeploymentGroup {current.physical_id}",
            lambda: client.delete_deployment_group(
                applicationName=current.properties["ApplicationName"],
                deploymentGroupName=current.physical_id,
            ),
            GONE,
        )


def _settings(props: dict[str, Any]) -> dict[str, Any]:
    skipped = ("ApplicationName", "DeploymentGroupName", "Deployment")
    settings: dict[str, Any] = camel({k: v for k, v in props.items() if k not in skipped})
    return settings


class DeploymentConfigProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        name = props.get("DeploymentConfigName") or request.name
        settings = camel({k: v for k, v in props.items() if k != "DeploymentConfigName"})
        client = self.clients.client("codedeploy")
        calling(
            f"CreateDeploymentConfig {name}",
            lambda: client.create_deployment_config(deploymentConfigName=name, **settings),
        )
        return Outcome(name)

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        return Outcome(current.physical_id)  # every change replaces it (types.py)

    def delete(self, current: Current) -> None:
        client = self.clients.client("codedeploy")
        calling(
            f"DeleteDeploymentConfig {current.physical_id}",
            lambda: client.delete_deployment_config(deploymentConfigName=current.physical_id),
            GONE,
        )
