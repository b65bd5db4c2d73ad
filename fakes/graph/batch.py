"""JSON ``$batch``: the payload's rules and each step as a request of its own."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.graph.errors import GraphError, error_payload
from fakes.server import Request

MAX_BATCH = 20


def sub_request(outer: Request, step: dict[str, Any]) -> Request:
    """A $batch step as a request of its own, with the outer request's Authorization."""
    split = urlsplit(step["url"])
    headers = {str(k).lower(): str(v) for k, v in (step.get("headers") or {}).items()}
    headers["authorization"] = outer.header("authorization") or ""
    body = step.get("body")
    return Request(
        method=step["method"].upper(),
        path="/v1.0/" + split.path.lstrip("/"),
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=json.dumps(body).encode() if body is not None else b"",
        base_url=outer.base_url,
    )


def batch_steps(request: Request) -> list[dict[str, Any]]:
    try:
        payload = request.json()
    except ValueError:
        payload = None
    steps = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(steps, list) or not steps:
        raise GraphError(400, "BadRequest", "Invalid batch payload: 'requests' must be a non-empty list.")
    if len(steps) > MAX_BATCH:
        raise GraphError(400, "BadRequest", f"The number of batch requests exceeds the limit of {MAX_BATCH}.")
    seen: set[str] = set()
    for step in steps:
        _check_step(step, seen)
        seen.add(step["id"])
    return steps


def _check_step(step: Any, seen: set[str]) -> None:
    if not isinstance(step, dict) or not all(isinstance(step.get(k), str) for k in ("id", "method", "url")):
        raise GraphError(400, "BadRequest", "Every batch request needs a string id, method and url.")
    if step["id"] in seen:
        raise GraphError(400, "BadRequest", f"Batch request id '{step['id']}' is used twice.")
    if not set(step.get("dependsOn") or []) <= seen:
        raise GraphError(400, "BadRequest", "dependsOn must name earlier requests of the batch.")


def step_error(
    step_id: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "id": step_id,
        "status": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": error_payload(code, message),
    }
