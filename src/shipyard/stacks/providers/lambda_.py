"""AWS::Lambda::Function and AWS::Lambda::Version through the ``lambda`` client."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.protocol import Current, Outcome, ProviderError, Request

GONE = ("ResourceNotFoundException",)
# Properties UpdateFunctionConfiguration takes as they are.
CONFIGURATION = (
    "Role",
    "Handler",
    "Runtime",
    "Description",
    "Timeout",
    "MemorySize",
    "Environment",
)


def code_member(code: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's Code as Lambda takes it: inline ZipFile source becomes a zip
    holding ``index.py`` (as CloudFormation packs it); S3 locations pass through."""
    if isinstance(code.get("ZipFile"), str):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.py", code["ZipFile"])
        return {"ZipFile": buffer.getvalue()}
    if "S3Bucket" in code and "S3Key" in code:
        return {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion") if k in code}
    raise ProviderError("Code must have a ZipFile, or an S3Bucket and S3Key")


class FunctionProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        name = props.get("FunctionName") or request.name
        arguments: dict[str, Any] = {k: props[k] for k in CONFIGURATION if k in props}
        if isinstance(props.get("Tags"), list):
            arguments["Tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        lam = self.clients.client("lambda")
        created = calling(
            f"CreateFunction {name}",
            lambda: lam.create_function(
                FunctionName=name, Code=code_member(props.get("Code") or {}), **arguments
            ),
        )
        return Outcome(name, {"Arn": created["FunctionArn"]})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        name, props, old = current.physical_id, request.properties, current.properties
        lam = self.clients.client("lambda")
        if props.get("Code") != old.get("Code"):
            calling(
                f"UpdateFunctionCode {name}",
                lambda: lam.update_function_code(FunctionName=name, **code_member(props["Code"])),
            )
        changed = {k: props.get(k) for k in CONFIGURATION if props.get(k) != old.get(k)}
        if changed:
            # A property removed goes back to Lambda's default.
            defaults = {"Environment": {"Variables": {}}, "Description": ""}
            arguments = {k: v if v is not None else defaults.get(k) for k, v in changed.items()}
            arguments = {k: v for k, v in arguments.items() if v is not None}
            calling(
                f"UpdateFunctionConfiguration {name}",
                lambda: lam.update_function_configuration(FunctionName=name, **arguments),
            )
        return Outcome(name, current.attributes)

    def delete(self, current: Current) -> None:
        lam = self.clients.client("lambda")
        calling(
            f"DeleteFunction {current.physical_id}",
            lambda: lam.delete_function(FunctionName=current.physical_id),
            GONE,
        )


class VersionProvider:
    """Versions are immutable: a change is a replacement (types.py), never an update."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        lam = self.clients.client("lambda")
        arguments = {k: props[k] for k in ("Description", "CodeSha256") if k in props}
        published = calling(
            f"PublishVersion {props.get('FunctionName')}",
            lambda: lam.publish_version(FunctionName=props["FunctionName"], **arguments),
        )
        arn = published["FunctionArn"]
        return Outcome(arn, {"Version": published["Version"], "FunctionArn": arn})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        return Outcome(current.physical_id, current.attributes)

    def delete(self, current: Current) -> None:
        function, _, version = current.physical_id.rpartition(":")
        lam = self.clients.client("lambda")
        calling(
            f"DeleteFunction {current.physical_id}",
            lambda: lam.delete_function(FunctionName=function, Qualifier=version),
            GONE,
        )
