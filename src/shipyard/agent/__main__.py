"""``python -m shipyard.agent --config FILE``: run the agent in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from shipyard.agent.loop import main


def cli() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shipyard.agent", description="Run the Shipyard deployment agent."
    )
    parser.add_argument("--config", required=True, type=Path, help="agent config file (YAML)")
    args = parser.parse_args()
    return main(args.config)


if __name__ == "__main__":
    raise SystemExit(cli())
