"""ECS names, ids and ARNs, and the error constructors the operations share.

arn:aws:ecs:<region>:<account>:cluster/<cluster>
arn:aws:ecs:<region>:<account>:service/<cluster>/<service>
arn:aws:ecs:<region>:<account>:task-set/<cluster>/<service>/ecs-svc/<19 digits>
arn:aws:ecs:<region>:<account>:task/<cluster>/<32 hex>
arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>
"""

from __future__ import annotations

import re
import secrets
import uuid

from shipyard.errors import ApiError
from shipyard.model import ACCOUNT_ID

NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
DEFAULT_CLUSTER = "default"


def _arn(region: str, resource: str) -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT_ID}:{resource}"


def cluster_arn(region: str, cluster: str) -> str:
    return _arn(region, f"cluster/{cluster}")


def service_arn(region: str, cluster: str, service: str) -> str:
    return _arn(region, f"service/{cluster}/{service}")


def task_set_arn(region: str, cluster: str, service: str, task_set_id: str) -> str:
    return _arn(region, f"task-set/{cluster}/{service}/{task_set_id}")


def task_arn(region: str, cluster: str, task_id: str) -> str:
    return _arn(region, f"task/{cluster}/{task_id}")


def task_definition_arn(region: str, family: str, revision: int) -> str:
    return _arn(region, f"task-definition/{family}:{revision}")


def new_task_set_id() -> str:
    return f"ecs-svc/{secrets.randbelow(9 * 10**18) + 10**18}"


def new_task_id() -> str:
    return uuid.uuid4().hex


def new_service_id() -> str:
    return uuid.uuid4().hex


def last_part(reference: str, kind: str) -> str:
    """The name in ``reference`` (a name or an ARN of ``kind``): the ARN's last path part."""
    if reference.startswith("arn:"):
        resource = reference.split(":", 5)[-1]
        if not resource.startswith(kind + "/"):
            raise invalid(f"{reference!r} is not an ECS {kind} ARN")
        return resource.rsplit("/", 1)[-1]
    return reference


def cluster_name(reference: str | None) -> str:
    name = last_part(reference or DEFAULT_CLUSTER, "cluster")
    if not NAME.fullmatch(name):
        raise invalid(
            "Cluster names may contain only letters, numbers, hyphens and underscores (up to 255)"
        )
    return name


def task_set_id(reference: str) -> str:
    """A task set's id from its id or ARN (ids contain a slash: ``ecs-svc/<digits>``)."""
    if reference.startswith("arn:"):
        parts = reference.split(":", 5)[-1].split("/")
        if parts[0] != "task-set" or len(parts) != 5:
            raise invalid(f"{reference!r} is not an ECS task set ARN")
        return "/".join(parts[3:])
    return reference


def task_definition_ref(reference: str) -> tuple[str, int | None]:
    """``family``, ``family:revision`` or an ARN → (family, revision or None for latest)."""
    text = reference
    if text.startswith("arn:"):
        resource = text.split(":", 5)[-1]
        if not resource.startswith("task-definition/"):
            raise invalid(f"{reference!r} is not a task definition ARN")
        text = resource.removeprefix("task-definition/")
    family, _, revision = text.partition(":")
    if not NAME.fullmatch(family) or (revision and not revision.isdigit()):
        raise ApiError("ClientException", f"Invalid revision number. Number: {reference}")
    return family, int(revision) if revision else None


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def client_error(message: str) -> ApiError:
    return ApiError("ClientException", message)


def cluster_not_found() -> ApiError:
    return ApiError("ClusterNotFoundException", "Cluster not found.")


def service_not_found() -> ApiError:
    return ApiError("ServiceNotFoundException", "Service not found.")


def service_not_active() -> ApiError:
    return ApiError("ServiceNotActiveException", "Service was not ACTIVE.")


def task_set_not_found(reference: str) -> ApiError:
    return ApiError("TaskSetNotFoundException", f"The specified task set {reference} not found.")


def unsupported(message: str) -> ApiError:
    return ApiError("UnsupportedFeatureException", message)
