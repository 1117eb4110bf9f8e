"""A revision that is an appspec alone (Lambda, ECS): its text inline
(AppSpecContent, or String for Lambda) with an optional SHA-256, or a YAML or JSON
object in S3 (reference codedeploy.md §1.3, CreateDeployment)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from typing import Any

from shipyard.errors import InvalidRevision, MissingRevision
from shipyard.platforms.server import BundleExists

BUNDLE_TYPES = ("YAML", "JSON")
# The text of an S3 appspec in the built-in store (None: no such object).
ReadAppSpec = Callable[[dict[str, Any]], str | None]
_MEMBERS = {"AppSpecContent": "appSpecContent", "String": "string"}


def check(
    revision: Any, exists: BundleExists, platform: str, inline: Collection[str]
) -> dict[str, Any]:
    """The revision as stored; ``inline`` are the inline revision types the platform
    takes. The appspec itself is parsed by the caller (``text`` gives it)."""
    if not isinstance(revision, dict):
        raise InvalidRevision("revision must be an object")
    kind = revision.get("revisionType")
    if isinstance(kind, str) and kind in inline:
        member = _MEMBERS[kind]
        return {"revisionType": kind, member: _content(revision.get(member), member)}
    if kind == "S3":
        return {"revisionType": "S3", "s3Location": _s3_location(revision, exists, platform)}
    allowed = f"{', '.join(inline)} or S3"
    raise InvalidRevision(f"revisionType must be {allowed} for {platform}; got {kind!r}")


def inline_text(revision: dict[str, Any]) -> str | None:
    """The appspec of an inline revision (None for S3)."""
    member = _MEMBERS.get(revision["revisionType"])
    return None if member is None else str(revision[member]["content"])


def text(revision: dict[str, Any], read: ReadAppSpec) -> str:
    """The revision's appspec text (an S3 one read from the store)."""
    inline = inline_text(revision)
    if inline is not None:
        return inline
    loc = revision["s3Location"]
    found = read(loc)
    if found is None:
        raise MissingRevision(f"No appspec at s3://{loc['bucket']}/{loc['key']}")
    return found


def _content(value: Any, member: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("content"), str):
        raise InvalidRevision(f"revision.{member}.content must be the appspec's text")
    content = value["content"]
    given = value.get("sha256")
    if given is not None:
        actual = hashlib.sha256(content.encode()).hexdigest()
        if not isinstance(given, str) or given.lower() != actual:
            raise InvalidRevision(
                f"revision.{member}.sha256 does not match the content (its SHA-256 is {actual})"
            )
    return {"content": content, **({"sha256": given} if given is not None else {})}


def _s3_location(revision: dict[str, Any], exists: BundleExists, platform: str) -> dict[str, Any]:
    loc = revision.get("s3Location")
    if not isinstance(loc, dict) or not loc.get("bucket") or not loc.get("key"):
        raise InvalidRevision("An S3 revision needs s3Location with bucket and key")
    if loc.get("bundleType") not in BUNDLE_TYPES:
        raise InvalidRevision(
            f"bundleType must be YAML or JSON for {platform}; got {loc.get('bundleType')!r}"
        )
    if exists(loc) is False:
        raise MissingRevision(f"No appspec at s3://{loc['bucket']}/{loc['key']}")
    return dict(loc)
