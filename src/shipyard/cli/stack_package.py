"""Packaging a stack template's local code for ``shipyard stack deploy``: every
AWS::Serverless::Function whose CodeUri is a local directory (or zip file) is zipped,
stored in the server's built-in store and its CodeUri rewritten to that ``s3://``
location, as ``aws cloudformation package`` does. The key is the zip's SHA-256, so
unchanged code is neither uploaded again nor published as a new version."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

from shipyard.cli.client import EXIT_USAGE, CliError, ShipyardClient
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.text import parse

BUCKET = "shipyard-stacks"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries dated alike: the same code, the same hash


def package(client: ShipyardClient, template_path: Path, stack: str) -> str:
    """The template text to send: local CodeUris replaced by stored locations."""
    try:
        text = template_path.read_text()
        document = parse(text)
    except OSError as exc:
        raise CliError(f"cannot read {template_path}: {exc.strerror}", EXIT_USAGE) from None
    except TemplateError as exc:
        raise CliError(f"{template_path}: {exc.message}", EXIT_USAGE) from None
    changed = False
    for properties in _code_holders(document):
        uri = properties.get("CodeUri")
        if not isinstance(uri, str) or uri.startswith("s3://"):
            continue
        local = (template_path.parent / uri).resolve()
        if not local.exists():
            raise CliError(f"CodeUri {uri!r} does not exist (looked at {local})", EXIT_USAGE)
        properties["CodeUri"] = _store(client, local, stack)
        changed = True
    return yaml.safe_dump(document, sort_keys=False) if changed else text


def _code_holders(document: dict[str, Any]) -> list[dict[str, Any]]:
    holders = []
    globals_ = (document.get("Globals") or {}).get("Function")
    if isinstance(globals_, dict):
        holders.append(globals_)
    for resource in (document.get("Resources") or {}).values():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function":
            properties = resource.setdefault("Properties", {})
            if isinstance(properties, dict):
                holders.append(properties)
    return holders


def zipped(local: Path) -> bytes:
    if local.is_file() and local.suffix == ".zip":
        return local.read_bytes()
    buffer = io.BytesIO()
    root = local if local.is_dir() else local.parent
    files = sorted(p for p in root.rglob("*") if p.is_file()) if local.is_dir() else [local]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            if "__pycache__" in path.parts:
                continue
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), FIXED_TIME)
            info.create_system = 3
            info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _store(client: ShipyardClient, local: Path, stack: str) -> str:
    data = zipped(local)
    key = f"{stack}/{hashlib.sha256(data).hexdigest()}.zip"
    client.ensure_bucket(BUCKET)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "code.zip"
        path.write_bytes(data)
        client.upload(path, BUCKET, key)
    return f"s3://{BUCKET}/{key}"
