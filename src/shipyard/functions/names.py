"""Lambda's names, ARNs, qualifiers and limits, and its error shapes for bad input."""

from __future__ import annotations

import datetime as dt
import re

from shipyard.errors import ApiError
from shipyard.model import ACCOUNT_ID

LATEST = "$LATEST"
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
VERSION = re.compile(r"[0-9]{1,10}")
# FunctionName as Lambda accepts it: a name, a partial ARN or a full ARN, each optionally
# followed by ``:qualifier``.
_FUNCTION_REF = re.compile(
    r"(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?"
)
ROLE = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@/-]+")

PYTHON_RUNTIMES = frozenset(f"python3.{minor}" for minor in range(9, 15))
PROVIDED_RUNTIMES = frozenset({"provided", "provided.al2", "provided.al2023"})
RUNTIMES = PYTHON_RUNTIMES | PROVIDED_RUNTIMES

DEFAULT_TIMEOUT = 3
MAX_TIMEOUT = 900
DEFAULT_MEMORY = 128
MIN_MEMORY, MAX_MEMORY = 128, 10240
MAX_ENVIRONMENT_BYTES = 4096
ENV_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
RESERVED_ENV = frozenset(
    {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV"}
    | {"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"}
    | {"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE"}
    | {"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY"}
    | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    | {"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}
)


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValueException", message, 400)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message, 404)


def conflict(message: str) -> ApiError:
    return ApiError("ResourceConflictException", message, 409)


def precondition_failed(message: str) -> ApiError:
    return ApiError("PreconditionFailedException", message, 412)


def function_arn(region: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def function_missing(region: str, name: str, qualifier: str | None = None) -> ApiError:
    return not_found(f"Function not found: {function_arn(region, name, qualifier)}")


def parse_function_ref(value: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """``(name, qualifier)`` from a FunctionName path member and an optional Qualifier."""
    found = _FUNCTION_REF.fullmatch(value)
    if found is None:
        raise invalid(
            f"1 validation error detected: Value '{value}' at 'functionName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
            "(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        )
    derived = found["qualifier"]
    if qualifier is not None and derived is not None and qualifier != derived:
        raise invalid(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    chosen = qualifier if qualifier is not None else derived
    if chosen is not None and chosen != LATEST and not _is_qualifier(chosen):
        raise invalid(f"Invalid qualifier: {chosen!r}")
    return found["name"], chosen


def _is_qualifier(value: str) -> bool:
    return bool(VERSION.fullmatch(value) or ALIAS_NAME.fullmatch(value))


def check_function_name(name: object) -> str:
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise invalid(
            f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ "
            "and have length at most 64"
        )
    return name


def _matching(value: object, member: str, pattern: re.Pattern[str], shown: str) -> str:
    """``value`` when it fully matches ``pattern``; else Lambda's validation message."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise invalid(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {shown}"
        )
    return value


def check_alias_name(name: object) -> str:
    return _matching(name, "name", ALIAS_NAME, "(?!^[0-9]+$)([a-zA-Z0-9-_]+)")


def check_runtime(runtime: object) -> str:
    if runtime not in RUNTIMES:
        allowed = ", ".join(sorted(RUNTIMES))
        raise invalid(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must "
            f"satisfy enum value set: [{allowed}] or be a valid ARN"
        )
    return str(runtime)


def check_int(value: object, member: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must have value between {low} and {high}"
        )
    return value


def check_role(role: object) -> str:
    shown = "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
    return _matching(role, "role", ROLE, shown)


def check_environment(environment: object) -> dict[str, str]:
    if environment is None:
        return {}
    variables = environment.get("Variables", {}) if isinstance(environment, dict) else None
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise invalid("Environment.Variables must be a map of strings to strings")
    bad = [key for key in variables if not ENV_KEY.fullmatch(key)]
    if bad:
        raise invalid(
            f"Environment variable name {bad[0]!r} is not valid: names start with a letter, "
            "are at least 2 characters long and hold only letters, digits and underscores"
        )
    reserved = sorted(RESERVED_ENV & variables.keys())
    if reserved:
        raise invalid(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided contains reserved keys that are "
            f"currently not supported for modification. Reserved keys used in this "
            f"request: {', '.join(reserved)}"
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > MAX_ENVIRONMENT_BYTES:
        raise invalid(
            "Lambda was unable to configure your environment variables because the "
            f"environment variables you have provided exceeded the 4KB limit. "
            f"String measured: {size} bytes"
        )
    return dict(variables)


def last_modified(now: float) -> str:
    """Lambda's LastModified: ISO 8601 with milliseconds and a ``+0000`` offset."""
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
