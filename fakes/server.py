"""The HTTP layer every fake shares: a threaded TLS server on 127.0.0.1 and fault rules.

A fake is a model (state and the service's rules) plus a *handler*: a function from
:class:`Request` to :class:`Response`. :class:`FakeServer` serves one handler over HTTPS
with a certificate issued by the fakes' own CA (:class:`FakeCA`), or over plain HTTP when
asked. Fault rules sit in front of every handler, so each fake gets latency, throttling,
server errors and dropped connections for free; tests add them in process, testers through
``/_fake/faults`` on any running fake (``exsync fakes fault``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass
class Request:
    """One parsed HTTP request, as a fake's handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    base_url: str
    connection: int = 0  # which TCP connection brought it (connection-based auth such as NTLM)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a handler returns."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    repeated: list[tuple[str, str]] = field(default_factory=list)  # headers sent more than once

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(payload).encode(), hdrs)


Handler = Callable[[Request], Response]
ADMIN_PATH = "/_fake/"  # the fakes' own admin routes, answered before any fault rule


@dataclass
class FaultRule:
    """Makes matching requests misbehave.

    ``path`` is a substring of the request path ('' matches all), ``method`` an HTTP verb or
    None for any. ``status`` answers with that code (with ``retry_after`` seconds in a
    Retry-After header, and ``body``); ``latency`` sleeps first; ``drop`` closes the
    connection without answering. ``times`` limits how often the rule fires (None: always).
    """

    path: str = ""
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    body: Any = None
    latency: float = 0.0
    drop: bool = False
    times: int | None = None
    fired: int = 0

    def matches(self, request: Request) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method and self.method.upper() != request.method:
            return False
        return self.path in request.path


class Faults:
    """The fault rules of one server; tests switch them on and off."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule | None = None, **kwargs: Any) -> FaultRule:
        rule = rule or FaultRule(**kwargs)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, request: Request) -> FaultRule | None:
        """The first rule that matches ``request``, counted as fired."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(request):
                    rule.fired += 1
                    return rule
        return None


class FakeCA:
    """The certificate authority of the fakes, and the server certificate for 127.0.0.1.

    Clients trust the fakes by pointing their CA-bundle setting at :attr:`bundle_path`,
    the same setting an on-premises Exchange with an internal CA needs.
    """

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA(organization_name="exsync fakes")
        self._leaf = self._ca.issue_cert("127.0.0.1", "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        self.bundle_path = directory / "exsync-fakes-ca.pem"
        self.bundle_path.write_bytes(self._ca.cert_pem.bytes())

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        return context


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class FakeServer:
    """Serves one handler on 127.0.0.1 in a daemon thread until :meth:`stop`."""

    def __init__(self, handler: Handler, *, ca: FakeCA | None = None, port: int = 0) -> None:
        self.handler = handler
        self.faults = Faults()
        self.requests = 0
        self._connections = itertools.count(1)
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def setup(self) -> None:
                super().setup()
                self.connection_number = next(server._connections)

            def _serve(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = _ThreadingServer(("127.0.0.1", port), _RequestHandler)
        self.scheme = "https" if ca else "http"
        if ca:
            context = ca.server_context()
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, raw: BaseHTTPRequestHandler) -> None:
        length = int(raw.headers.get("Content-Length") or 0)
        body = raw.rfile.read(length) if length else b""
        split = urlsplit(raw.path)
        request = Request(
            method=raw.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in raw.headers.items()},
            body=body,
            base_url=self.base_url,
            connection=getattr(raw, "connection_number", 0),
        )
        if request.path.startswith(ADMIN_PATH):
            self._answer(raw, self._admin(request))
            return
        self.requests += 1
        rule = self.faults.take(request)
        if rule and rule.latency:
            time.sleep(rule.latency)
        if rule and rule.drop:
            raw.close_connection = True
            raw.connection.close()
            return
        if rule and rule.status:
            response = _fault_response(rule)
        else:
            try:
                response = self.handler(request)
            except Exception as exc:  # a fake's bug must surface as a 500, not a hang
                response = Response.json({"error": f"fake server error: {exc!r}"}, status=500)
        self._answer(raw, response)

    def _admin(self, request: Request) -> Response:
        """``/_fake/faults``: GET lists the fault rules (with how often each fired), POST adds
        one (a JSON object of :class:`FaultRule` fields), DELETE removes them all. This is how
        a tester injects faults into served fakes from outside the process."""
        if request.path.rstrip("/") != f"{ADMIN_PATH}faults":
            return Response.json({"error": f"unknown admin path {request.path}"}, status=404)
        if request.method == "DELETE":
            self.faults.clear()
            return Response(204)
        if request.method == "POST":
            try:
                rule = self.faults.add(fault_rule(request.json()))
            except (ValueError, TypeError) as exc:
                return Response.json({"error": str(exc)}, status=400)
            return Response.json(dataclasses.asdict(rule), status=201)
        return Response.json({"faults": [dataclasses.asdict(r) for r in self.faults.rules()]})

    def _answer(self, raw: BaseHTTPRequestHandler, response: Response) -> None:
        raw.send_response(response.status)
        for name, value in [*response.headers.items(), *response.repeated]:
            raw.send_header(name, value)
        raw.send_header("Content-Length", str(len(response.body)))
        raw.end_headers()
        raw.wfile.write(response.body)


def fault_rule(data: Any) -> FaultRule:
    """A :class:`FaultRule` from a JSON object of its fields; ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a fault rule is a JSON object")
    known = {f.name for f in dataclasses.fields(FaultRule)} - {"fired"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fault rule fields: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    rule = FaultRule(**data)
    if rule.status is not None and not 100 <= int(rule.status) <= 599:
        raise ValueError(f"status {rule.status} is no HTTP status")
    if rule.latency < 0 or (rule.times is not None and rule.times < 1):
        raise ValueError("latency must be at least 0 and times at least 1")
    return rule


def _fault_response(rule: FaultRule) -> Response:
    headers = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = f"{rule.retry_after:g}"
    payload = rule.body if rule.body is not None else {"error": {"code": "InjectedFault", "message": "fault rule"}}
    if isinstance(payload, bytes):
        return Response(rule.status or 500, payload, headers)
    return Response.json(payload, status=rule.status or 500, headers=headers)
