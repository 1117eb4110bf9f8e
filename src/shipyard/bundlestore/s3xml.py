"""S3's XML: rendering answers, parsing request documents, and pages of object listings."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from email.utils import formatdate
from typing import Union
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.responses import Response

from shipyard.bundlestore.disk import ObjectVersion, S3Error

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEYS = 1000

# An element's content: text, a number, a boolean, or child elements in order.
XmlValue = Union[str, int, bool, "Xml"]
Xml = list[tuple[str, XmlValue]]


def render(name: str, value: XmlValue) -> str:
    if isinstance(value, list):
        inner = "".join(render(child, child_value) for child, child_value in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def xml_response(
    root: str, content: XmlValue, status: int = 200, *, namespace: bool = True
) -> Response:
    document = render(root, content)
    if namespace:
        document = document.replace(f"<{root}>", f'<{root} xmlns="{NAMESPACE}">', 1)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + document
    return Response(body, status_code=status, media_type="application/xml")


def parse_xml(data: bytes, root_name: str) -> ET.Element:
    """A small request document, namespaces dropped; MalformedXML if it is not ``root_name``."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # no entity tricks in an S3 request
        raise S3Error("MalformedXML", "The XML you provided may not declare entities.")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise S3Error("MalformedXML", f"The XML you provided was not well-formed: {exc}") from None
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    if root.tag != root_name:
        raise S3Error("MalformedXML", f"Expected a {root_name} document, got {root.tag}")
    return root


def iso_time(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def page_of_keys(
    versions: Sequence[ObjectVersion], *, prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[ObjectVersion], list[str], bool]:
    """One page of a listing: objects, common prefixes, and whether more follow.

    ``versions`` are sorted by key. Keys at or before ``after`` (a marker, start-after
    or continuation point) are skipped; with a delimiter, keys sharing a prefix up to the
    delimiter roll up into one common prefix, which counts once towards ``max_keys``.
    """
    contents: list[ObjectVersion] = []
    prefixes: list[str] = []
    for version in versions:
        key = version.key
        if key <= after or not key.startswith(prefix):
            continue
        rolled_up = None
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                rolled_up = key[: cut + len(delimiter)]
                if rolled_up <= after or (prefixes and prefixes[-1] == rolled_up):
                    continue
        if len(contents) + len(prefixes) >= max_keys:
            return contents, prefixes, True
        if rolled_up is None:
            contents.append(version)
        else:
            prefixes.append(rolled_up)
    return contents, prefixes, False


def list_objects_result(
    bucket: str, versions: Sequence[ObjectVersion], query: dict[str, str], owner: Xml
) -> Response:
    """ListObjects (v1) or, with ``list-type=2``, ListObjectsV2."""
    v2 = query.get("list-type") == "2"
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    try:
        max_keys = max(0, min(int(query.get("max-keys", MAX_KEYS)), MAX_KEYS))
    except ValueError:
        raise S3Error("InvalidArgument", "max-keys must be an integer") from None
    encoding = query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")

    def enc(text: str) -> str:
        return quote(text, safe="/") if encoding else text

    token = query.get("continuation-token")
    if v2:
        after = _decode_token(token) if token else query.get("start-after", "")
    else:
        after = query.get("marker", "")
    contents, prefixes, truncated = page_of_keys(
        versions, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
    )
    last = max([*(v.key for v in contents), *prefixes], default="")
    fields: Xml = [("Name", bucket), ("Prefix", enc(prefix))]
    if v2:
        fields += [("KeyCount", len(contents) + len(prefixes))]
        if token:
            fields.append(("ContinuationToken", token))
        if truncated:
            fields.append(("NextContinuationToken", _encode_token(last)))
        if "start-after" in query:
            fields.append(("StartAfter", enc(query["start-after"])))
    else:
        fields.append(("Marker", enc(after)))
        if truncated and delimiter:
            fields.append(("NextMarker", enc(last)))
    fields += [("MaxKeys", max_keys), ("IsTruncated", truncated)]
    if delimiter:
        fields.append(("Delimiter", enc(delimiter)))
    if encoding:
        fields.append(("EncodingType", encoding))
    with_owner = not v2 or query.get("fetch-owner") == "true"
    for version in contents:
        entry: Xml = [
            ("Key", enc(version.key)),
            ("LastModified", iso_time(version.last_modified)),
            ("ETag", f'"{version.etag}"'),
            ("Size", version.size),
            ("StorageClass", "STANDARD"),
        ]
        fields.append(("Contents", entry + ([("Owner", owner)] if with_owner else [])))
    fields += [("CommonPrefixes", [("Prefix", enc(p))]) for p in prefixes]
    return xml_response("ListBucketResult", fields)


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None
