"""The stock CodeDeploy agent's two config files, pointed at a Shipyard server.

``shipyard instance register --format codedeploy`` writes them into the agent's conf
directory (``/etc/codedeploy-agent/conf`` on a stock install): the on-premises file
with the instance's keys, and ``codedeployagent.yml`` with the stock settings plus the
command service and S3 endpoints. The agent reads them with Ruby's YAML, whose keys are
symbols (``:root_dir:``); values are written as JSON strings, which YAML reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ONPREMISES_FILE = "codedeploy.onpremises.yml"
SETTINGS_FILE = "codedeployagent.yml"
# The stock install's directories (conf/codedeployagent.yml of agent 1.8.1).
DEFAULT_ROOT_DIR = "/opt/codedeploy-agent/deployment-root"
DEFAULT_LOG_DIR = "/var/log/aws/codedeploy-agent/"
DEFAULT_PID_DIR = "/opt/codedeploy-agent/state/.pid/"


@dataclass(frozen=True)
class StockAgentFiles:
    endpoint: str  # the Shipyard server, for commands and bundles alike
    access_key_id: str
    secret_access_key: str
    iam_user_arn: str  # the agent sends it as its HostIdentifier
    region: str
    conf_dir: Path
    root_dir: str = DEFAULT_ROOT_DIR
    log_dir: str = DEFAULT_LOG_DIR
    pid_dir: str = DEFAULT_PID_DIR

    def onpremises(self) -> str:
        return _lines(
            {
                "aws_access_key_id": self.access_key_id,
                "aws_secret_access_key": self.secret_access_key,
                "iam_user_arn": self.iam_user_arn,
                "region": self.region,
            }
        )

    def settings(self) -> str:
        return _lines(
            {
                ":log_aws_wire": False,
                ":log_dir": self.log_dir,
                ":pid_dir": self.pid_dir,
                ":program_name": "codedeploy-agent",
                ":root_dir": self.root_dir,
                ":verbose": False,
                ":wait_between_runs": 1,
                ":max_revisions": 5,
                ":disable_imds_v1": False,
                ":on_premises_config_file": str(self.conf_dir / ONPREMISES_FILE),
                ":deploy_control_endpoint": self.endpoint,
                ":s3_endpoint_override": self.endpoint,
            }
        )


def _lines(values: dict[str, str | int | bool]) -> str:
    body = "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items())
    return "---\n# Written by 'shipyard instance register --format codedeploy'.\n" + body
