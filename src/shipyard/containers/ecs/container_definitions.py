"""Checking and normalising RegisterTaskDefinition's containerDefinitions.

The members Shipyard carries out are checked here (name, image, command, entryPoint,
environment, portMappings, healthCheck, essential, cpu, memory, memoryReservation,
stopTimeout); any other member is kept as given and shown back, without effect.
"""

from __future__ import annotations

from typing import Any

from shipyard.containers.ecs.names import NAME, client_error, invalid

Json = dict[str, Any]

# ECS's ranges for a container health check (seconds, attempts).
HEALTH_RANGES = {
    "interval": (5, 300, 30),
    "timeout": (2, 60, 5),
    "retries": (1, 10, 3),
    "startPeriod": (0, 300, 0),
}
MAX_STOP_TIMEOUT = 120


def check_containers(raw: Any, network_mode: str) -> list[Json]:
    if not isinstance(raw, list) or not raw:
        raise client_error("Container list cannot be empty.")
    containers = [_container(item, network_mode) for item in raw]
    names = [c["name"] for c in containers]
    if len(set(names)) != len(names):
        raise client_error("Container names must be unique within a task definition.")
    if not any(c["essential"] for c in containers):
        raise client_error("Task definition must have at least one essential container.")
    ports = [(p["hostPort"], p["protocol"]) for c in containers for p in c["portMappings"]]
    fixed = [port for port in ports if port[0]]
    if len(set(fixed)) != len(fixed):
        raise client_error("Host ports must be unique within a task definition.")
    return containers


def _container(item: Any, network_mode: str) -> Json:
    if not isinstance(item, dict):
        raise client_error("Each container definition must be an object.")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise client_error(
            "Container.name should not be null or empty and may contain only letters, "
            "numbers, hyphens and underscores."
        )
    image = item.get("image")
    if not isinstance(image, str) or not image.strip():
        raise client_error(f"Container.image should not be null or empty (container {name}).")
    out: Json = {**item, "name": name, "image": image}
    for key in ("command", "entryPoint"):
        if key in item:
            out[key] = _strings(item[key], f"{name}.{key}")
    out["environment"] = _environment(item.get("environment", []), name)
    out["portMappings"] = [_port(p, name, network_mode) for p in item.get("portMappings", [])]
    out["essential"] = _bool(item.get("essential", True), f"{name}.essential")
    for key in ("cpu", "memory", "memoryReservation", "stopTimeout"):
        if key in item:
            out[key] = _int(item[key], f"{name}.{key}", 0, 10**7)
    if out.get("memory") is not None and out["memory"] < 6:
        raise client_error(f"Invalid 'memory' setting for container '{name}': at least 6 MiB.")
    if out.get("stopTimeout", 0) > MAX_STOP_TIMEOUT:
        raise invalid(f"{name}.stopTimeout must be at most {MAX_STOP_TIMEOUT} seconds.")
    if "healthCheck" in item:
        out["healthCheck"] = _health_check(item["healthCheck"], name)
    return out


def _port(raw: Any, container: str, network_mode: str) -> Json:
    if not isinstance(raw, dict):
        raise client_error(f"{container}.portMappings entries must be objects.")
    port = _int(raw.get("containerPort"), f"{container}.portMappings.containerPort", 1, 65535)
    host = _int(raw.get("hostPort", 0), f"{container}.portMappings.hostPort", 0, 65535)
    if network_mode == "awsvpc" and host not in (0, port):
        raise client_error(
            "When networkMode=awsvpc, the host ports and container ports in port mappings "
            "must match."
        )
    protocol = raw.get("protocol", "tcp")
    if protocol not in ("tcp", "udp"):
        raise invalid(f"{container}.portMappings.protocol must be tcp or udp.")
    out = {**raw, "containerPort": port, "hostPort": host, "protocol": protocol}
    if network_mode == "awsvpc":
        out["hostPort"] = port  # as ECS shows it; Shipyard still publishes on a free port
    return out


def _health_check(raw: Any, container: str) -> Json:
    if not isinstance(raw, dict):
        raise client_error(f"{container}.healthCheck must be an object.")
    command = _strings(raw.get("command"), f"{container}.healthCheck.command")
    if not command or (command[0] in ("CMD", "CMD-SHELL") and len(command) < 2):
        raise client_error(f"{container}.healthCheck.command must name a command.")
    out: Json = {**raw, "command": command}
    for key, (low, high, default) in HEALTH_RANGES.items():
        out[key] = _int(raw.get(key, default), f"{container}.healthCheck.{key}", low, high)
    return out


def _environment(raw: Any, container: str) -> list[Json]:
    if not isinstance(raw, list):
        raise client_error(f"{container}.environment must be a list.")
    out = []
    for pair in raw:
        if not isinstance(pair, dict) or not isinstance(pair.get("name"), str):
            raise client_error(f"{container}.environment entries need a name.")
        value = pair.get("value", "")
        if not isinstance(value, str):
            raise client_error(f"{container}.environment value of {pair['name']} must be text.")
        out.append({"name": pair["name"], "value": value})
    return out


def _strings(raw: Any, what: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise client_error(f"{what} must be a list of strings.")
    return list(raw)


def _bool(raw: Any, what: str) -> bool:
    if not isinstance(raw, bool):
        raise client_error(f"{what} must be true or false.")
    return raw


def _int(raw: Any, what: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise client_error(f"{what} must be an integer between {low} and {high}.")
    return raw
