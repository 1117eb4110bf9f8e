"""Stack operations: how long CreateStack, UpdateStack and DeleteStack take end to end.

Run: .venv/bin/python bench/stack_operations.py [--repeat 5]

Starts ``shipyard server`` in its own process (SQLite). Each round creates a stack of
four resources (a CodeDeploy application, a python3.11 function with inline code, a
version, an alias), updates it (the function's environment: one in-place update), and
deletes it. Each wall time runs from the API call to the first DescribeStacks (polled
every 20 ms) that shows the operation's final status. Prints medians and the largest.

The figures are the stack engine's overhead over the resource calls it makes: the
providers call the server's own Lambda and CodeDeploy APIs through boto3 over loopback.
Bounded: ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from harness import ServerProcess

REGION = "us-east-1"
TEMPLATE = """\
Parameters:
  Build: {Type: String, Default: "1"}
Resources:
  App:
    Type: AWS::CodeDeploy::Application
    Properties: {ComputePlatform: Lambda}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/bench
      Environment: {Variables: {BUILD: !Ref Build}}
      Code:
        ZipFile: |
          def handler(event, context):
              return None
  V1:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref Fn}
  Live:
    Type: AWS::Lambda::Alias
    Properties: {Name: live, FunctionName: !Ref Fn, FunctionVersion: !GetAtt V1.Version}
"""


def timed(cfn: Any, start: Callable[[], Any], ref: Callable[[], str], done: str) -> float:
    began = time.perf_counter()
    start()
    for _ in range(3000):  # 60 s at most
        status = cfn.describe_stacks(StackName=ref())["Stacks"][0]["StackStatus"]
        if status == done:
            return time.perf_counter() - began
        if not status.endswith("IN_PROGRESS"):
            raise SystemExit(f"the stack ended {status}, not {done}")
        time.sleep(0.02)
    raise SystemExit(f"the stack did not reach {done} in 60 s")


def one_round(cfn: Any, name: str) -> dict[str, float]:
    ids: list[str] = []

    def create() -> None:
        ids.append(cfn.create_stack(StackName=name, TemplateBody=TEMPLATE)["StackId"])

    def update() -> None:
        cfn.update_stack(
            StackName=name,
            UsePreviousTemplate=True,
            Parameters=[{"ParameterKey": "Build", "ParameterValue": "2"}],
        )

    return {
        "create": timed(cfn, create, lambda: name, "CREATE_COMPLETE"),
        "update": timed(cfn, update, lambda: name, "UPDATE_COMPLETE"),
        "delete": timed(
            cfn, lambda: cfn.delete_stack(StackName=name), lambda: ids[0], "DELETE_COMPLETE"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"create": [], "update": [], "delete": []}
    with tempfile.TemporaryDirectory(prefix="shipyard-stack-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "server")
        try:
            key_id, secret = server.admin_keys()
            cfn: Any = boto3.client(
                "cloudformation",
                endpoint_url=server.url,
                region_name=REGION,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                config=Config(retries={"max_attempts": 0}),
            )
            for round_ in range(args.repeat):
                for operation, seconds in one_round(cfn, f"bench{round_}").items():
                    figures[operation].append(seconds)
        finally:
            server.stop()
    for operation, values in figures.items():
        print(
            f"{operation:<7} median {statistics.median(values) * 1000:7.1f} ms   "
            f"largest {max(values) * 1000:7.1f} ms   ({len(values)} rounds)"
        )


if __name__ == "__main__":
    main()
