"""Lambda API: functions and their versions (create, read, update, publish, delete)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from shipyard.bundlestore.disk import BundleStore, S3Error
from shipyard.functions.call import Json, LambdaCall, configuration, json_response
from shipyard.functions.code import CodeStore, Package, decode_zip_member
from shipyard.functions.names import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    LATEST,
    MAX_MEMORY,
    MAX_TIMEOUT,
    MIN_MEMORY,
    PYTHON_RUNTIMES,
    VERSION,
    check_environment,
    check_function_name,
    check_int,
    check_role,
    check_runtime,
    conflict,
    function_missing,
    invalid,
    last_modified,
    parse_function_ref,
    precondition_failed,
)
from shipyard.store import functions as store

# What makes two versions the same: PublishVersion returns the last published version
# instead of a new one when none of these changed.
PUBLISHED_FIELDS = ("CodeSha256", "Runtime", "Handler", "Timeout", "MemorySize", "Role")


def code_store(call: LambdaCall) -> CodeStore:
    return CodeStore(call.services.config.data_dir / "functions")


def resolve(call: LambdaCall, conn: Any, *, qualifier: str | None = None) -> tuple[str, Json]:
    """The function named in the path (and qualifier) and the version doc it names."""
    name, qualifier = parse_function_ref(call.params["name"], qualifier)
    version = qualifier or LATEST
    if not VERSION.fullmatch(version) and version != LATEST:
        alias = store.get_alias(conn, name, version)
        if alias is None:
            raise function_missing(call.region, name, version)
        version = alias["FunctionVersion"]
    doc = store.get_version(conn, name, version)
    if doc is None:
        raise function_missing(call.region, name, qualifier)
    return name, doc


def create_function(call: LambdaCall) -> Response:
    body = call.json()
    name = check_function_name(body.get("FunctionName"))
    if body.get("PackageType", "Zip") != "Zip":
        raise invalid("Only PackageType Zip is supported by Shipyard's function host")
    runtime = check_runtime(body.get("Runtime"))
    handler = _handler(runtime, body.get("Handler"))
    now = call.now()
    doc: Json = {
        "FunctionName": name,
        "Runtime": runtime,
        "Role": check_role(body.get("Role")),
        "Handler": handler,
        "Description": str(body.get("Description", "")),
        "Timeout": check_int(body.get("Timeout", DEFAULT_TIMEOUT), "timeout", 1, MAX_TIMEOUT),
        "MemorySize": check_int(
            body.get("MemorySize", DEFAULT_MEMORY), "memorySize", MIN_MEMORY, MAX_MEMORY
        ),
        "Environment": {"Variables": check_environment(body.get("Environment"))},
        "Version": LATEST,
        "LastModified": last_modified(now),
        "RevisionId": str(uuid.uuid4()),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "TracingConfig": {"Mode": "PassThrough"},
    }
    with call.services.db.tx() as conn:
        if store.exists(conn, name):
            raise conflict(f"Function already exist: {name}")
    package = _save_code(call, name, body.get("Code"))
    doc |= {"CodeSha256": package.sha256, "CodeSize": package.size}
    with call.services.db.tx() as conn:
        if store.exists(conn, name):
            raise conflict(f"Function already exist: {name}")
        store.create(conn, name, doc, now)
        if body.get("Publish"):
            doc = _publish(conn, name, doc, "")
    return json_response(configuration(doc, call.region), 201)


def get_function(call: LambdaCall) -> Response:
    with call.services.db.tx() as conn:
        _name, doc = resolve(call, conn, qualifier=call.query.get("Qualifier"))
    answer = {
        "Configuration": configuration(doc, call.region),
        "Code": {"RepositoryType": "S3"},
    }
    return json_response(answer)


def get_configuration(call: LambdaCall) -> Response:
    with call.services.db.tx() as conn:
        _name, doc = resolve(call, conn, qualifier=call.query.get("Qualifier"))
    return json_response(configuration(doc, call.region))


def update_code(call: LambdaCall) -> Response:
    body = call.json()
    name = _unqualified(call)
    with call.services.db.tx() as conn:
        _latest(call, conn, name, body.get("RevisionId"))
    package = _save_code(call, name, body)
    with call.services.db.tx() as conn:
        doc = _latest(call, conn, name, body.get("RevisionId"))
        replaced = Package(doc["CodeSha256"], doc["CodeSize"])
        doc |= {"CodeSha256": package.sha256, "CodeSize": package.size}
        doc = _touch(call, conn, name, doc)
        if body.get("Publish"):
            doc = _publish(conn, name, doc, "")
        if not store.code_in_use(conn, name, replaced.sha256):
            code_store(call).remove(name, replaced)
    _forget(call, name, LATEST)
    return json_response(configuration(doc, call.region))


def update_configuration(call: LambdaCall) -> Response:
    body = call.json()
    name = _unqualified(call)
    with call.services.db.tx() as conn:
        doc = _latest(call, conn, name, body.get("RevisionId"))
        if "Runtime" in body:
            doc["Runtime"] = check_runtime(body["Runtime"])
        if "Handler" in body or "Runtime" in body:
            doc["Handler"] = _handler(doc["Runtime"], body.get("Handler", doc.get("Handler")))
        if "Role" in body:
            doc["Role"] = check_role(body["Role"])
        if "Description" in body:
            doc["Description"] = str(body["Description"])
        if "Timeout" in body:
            doc["Timeout"] = check_int(body["Timeout"], "timeout", 1, MAX_TIMEOUT)
        if "MemorySize" in body:
            doc["MemorySize"] = check_int(body["MemorySize"], "memorySize", MIN_MEMORY, MAX_MEMORY)
        if "Environment" in body:
            doc["Environment"] = {"Variables": check_environment(body["Environment"])}
        doc = _touch(call, conn, name, doc)
    _forget(call, name, LATEST)
    return json_response(configuration(doc, call.region))


def publish_version(call: LambdaCall) -> Response:
    body = call.json()
    name = _unqualified(call)
    with call.services.db.tx() as conn:
        doc = _latest(call, conn, name, body.get("RevisionId"))
        sha = body.get("CodeSha256")
        if sha is not None and sha != doc["CodeSha256"]:
            raise precondition_failed(
                f"CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST "
                f"({doc['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST."
            )
        published = _publish(conn, name, doc, str(body.get("Description", "")))
    return json_response(configuration(published, call.region), 201)


def list_versions(call: LambdaCall) -> Response:
    name = _unqualified(call)
    with call.services.db.tx() as conn:
        docs = store.versions(conn, name)
    if not docs:
        raise function_missing(call.region, name)
    rendered = [configuration(doc, call.region, qualify_latest=True) for doc in docs]
    return json_response(call.page(rendered, "Versions"))


def list_functions(call: LambdaCall) -> Response:
    every = call.query.get("FunctionVersion")
    if every not in (None, "ALL"):
        raise invalid("FunctionVersion must be ALL")
    with call.services.db.tx() as conn:
        docs = store.all_versions(conn, published=every == "ALL")
    rendered = []
    for doc in docs:
        item = configuration(doc, call.region, qualify_latest=every == "ALL")
        item.pop("State", None)
        item.pop("LastUpdateStatus", None)
        rendered.append(item)
    return json_response(call.page(rendered, "Functions"))


def delete_function(call: LambdaCall) -> Response:
    name, qualifier = parse_function_ref(call.params["name"], call.query.get("Qualifier"))
    codes = code_store(call)
    with call.services.db.tx() as conn:
        if not store.exists(conn, name):
            raise function_missing(call.region, name, qualifier)
        if qualifier is None:
            store.delete(conn, name)
        else:
            _delete_version(call, conn, name, qualifier)
    if qualifier is None:
        codes.remove(name)
    _forget(call, name, qualifier)
    return json_response(None, 204)


def _delete_version(call: LambdaCall, conn: Any, name: str, version: str) -> None:
    if version == LATEST:
        raise invalid("$LATEST version cannot be deleted without deleting the function.")
    if not VERSION.fullmatch(version):
        raise invalid("Deletion of aliases is not supported through DeleteFunction")
    doc = store.get_version(conn, name, version)
    if doc is None:
        raise function_missing(call.region, name, version)
    users = [
        alias["Name"]
        for alias in store.aliases(conn, name)
        if version == alias["FunctionVersion"]
        or version in alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    ]
    if users:
        raise conflict(
            "Unable to delete version because the following aliases reference it: "
            f"[{', '.join(users)}]"
        )
    store.delete_version(conn, name, version)
    if not store.code_in_use(conn, name, doc["CodeSha256"]):
        code_store(call).remove(name, Package(doc["CodeSha256"], doc["CodeSize"]))


def _publish(conn: Any, name: str, latest: Json, description: str) -> Json:
    published = [doc for doc in store.versions(conn, name) if doc["Version"] != LATEST]
    if published and all(published[-1].get(f) == latest.get(f) for f in PUBLISHED_FIELDS):
        same_env = published[-1].get("Environment") == latest.get("Environment")
        if same_env:
            return published[-1]
    doc = {**latest, "RevisionId": str(uuid.uuid4())}
    if description:
        doc["Description"] = description
    version = store.publish(conn, name, doc)
    return {**doc, "Version": version}


def _latest(call: LambdaCall, conn: Any, name: str, revision_id: object) -> Json:
    doc = store.get_version(conn, name, LATEST)
    if doc is None:
        raise function_missing(call.region, name)
    if revision_id is not None and revision_id != doc["RevisionId"]:
        raise precondition_failed(
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id"
        )
    return doc


def _touch(call: LambdaCall, conn: Any, name: str, doc: Json) -> Json:
    doc = {**doc, "LastModified": last_modified(call.now()), "RevisionId": str(uuid.uuid4())}
    store.put_latest(conn, name, doc)
    return doc


def _unqualified(call: LambdaCall) -> str:
    name, qualifier = parse_function_ref(call.params["name"])
    if qualifier is not None:
        raise invalid(f"This operation does not take a qualified function name ({qualifier})")
    return name


def _handler(runtime: str, handler: object) -> str:
    if handler is None and runtime not in PYTHON_RUNTIMES:
        return ""
    if not isinstance(handler, str) or not handler or len(handler) > 128 or " " in handler:
        raise invalid(f"Handler is required for runtime {runtime} and must be like module.function")
    if runtime in PYTHON_RUNTIMES and "." not in handler:
        raise invalid(f"Handler {handler!r} must be module.function for runtime {runtime}")
    return handler


def _save_code(call: LambdaCall, name: str, code: object) -> Package:
    if not isinstance(code, dict):
        raise invalid("Code must name a ZipFile or an S3Bucket and S3Key")
    codes = code_store(call)
    if code.get("ImageUri"):
        raise invalid("Container images (ImageUri) are not supported by Shipyard's function host")
    if code.get("ZipFile") is not None:
        return codes.save_bytes(name, decode_zip_member(code["ZipFile"]))
    bucket, key = code.get("S3Bucket"), code.get("S3Key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise invalid("Code must name a ZipFile or an S3Bucket and S3Key")
    bundles = BundleStore(call.services.config.data_dir / "bundles", call.services.clock)
    try:
        found = bundles.get(bucket, key, code.get("S3ObjectVersion"))
    except S3Error as exc:
        raise invalid(
            f"Error occurred while GetObject. S3 Error Code: {exc.code}. "
            f"S3 Error Message: {exc.message}"
        ) from None
    return codes.save_file(name, found.path)


def _forget(call: LambdaCall, name: str, version: str | None) -> None:
    host = call.services.function_host
    if host is not None:
        host.forget(name, version)
