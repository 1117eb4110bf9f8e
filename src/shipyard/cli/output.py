"""``--output json``: what read commands print for scripts instead of tables.

JSON goes to stdout alone (one document), human text never mixes with it, and values
the API gives as datetimes are written as epoch seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

FORMATS = ("text", "json")


def wants_json(args: argparse.Namespace) -> bool:
    return getattr(args, "output", None) == "json"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return str(value)


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=_plain, sort_keys=True)
    sys.stdout.write("\n")
