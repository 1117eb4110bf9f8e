"""The function the stack ships. BUILD tells the versions apart; STATUS is what the
PreTraffic hook checks (anything but "ok" makes it reject the version)."""

import os

BUILD = 1
STATUS = "ok"


def handler(event, context):
    return {
        "status": STATUS,
        "build": BUILD,
        "stage": os.environ["STAGE"],
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
    }
