"""A stand-in for an OPA server: OPA's REST Data and Policy APIs on top of regopy.

OPA has no binary in the package registries this project installs from, so the OPA-server
engine is tested (and benchmarked) against this loopback server instead. It speaks the parts of
the wire protocol Maestro uses, as OPA documents them:

- `PUT /v1/policies/<id>` (Rego text) -> 200 `{}`; 400 `{"code", "message"}` when it does not
  compile. `GET /v1/policies` lists them.
- `PUT /v1/data/<path>` (JSON) -> 204; `GET /v1/data/<path>` -> `{"result": ...}`.
- `POST /v1/data/<path>` `{"input": ...}` -> `{"result": ...}`, or `{}` when undefined.
- `GET /health` -> 200 `{}`.

Each rule path is compiled once into a regopy bundle (rebuilt when policies or data change),
like OPA keeps its compiled policies between queries.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any

import regopy


class OpaStandIn:
    """The server's state: modules, data, and a compiled bundle per queried rule path."""

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.queries = 0
        self._bundles: dict[str, tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()

    def put_policy(self, policy_id: str, text: str) -> str | None:
        """Install a module; returns the compile error instead when it does not compile."""
        with self._lock:
            modules = {**self.modules, policy_id: text}
            try:
                interpreter = regopy.Interpreter()
                for name, source in modules.items():
                    interpreter.add_module(name, source)
                output = interpreter.query("x := 1")
                if not output.ok():
                    return str(output)
            except Exception as exc:
                return str(exc)
            self.modules = modules
            self._bundles.clear()
        return None

    def put_data(self, path: list[str], value: Any) -> None:
        with self._lock:
            if not path:
                self.data = dict(value)
            else:
                node = self.data
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = value
            self._bundles.clear()

    def get_data(self, path: list[str]) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def query(self, path: list[str], input_value: Any) -> tuple[bool, Any]:
        """(defined, value) of data.<path> for this input."""
        entrypoint = "/".join(path)
        with self._lock:
            self.queries += 1
            built = self._bundles.get(entrypoint)
            if built is None:
                builder = regopy.Interpreter()
                builder.add_data(self.data)
                for name, source in self.modules.items():
                    builder.add_module(name, source)
                bundle = builder.build(None, [entrypoint])
                if not bundle.ok():
                    raise ValueError(f"cannot compile {entrypoint}")
                built = self._bundles[entrypoint] = (builder, bundle, regopy.Interpreter())
            _, bundle, interpreter = built
            if input_value is not None:
                interpreter.set_input(input_value)
            output = interpreter.query_bundle_entrypoint(bundle, entrypoint)
            if not output.ok():
                raise ValueError(str(output))
            text = str(output)
        if text == "undefined":
            return False, None
        value = json.loads(text)["expressions"]
        if not value:
            return False, None
        return True, value[0]


def handler_for(state: OpaStandIn) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as OPA clients expect
        # One write per response, sent at once: headers and body written apart would meet the
        # client's delayed ACK (40 ms per request on Linux loopback) through Nagle's algorithm.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, status: int, body: Any = None) -> None:
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _path(self, prefix: str) -> list[str]:
            rest = self.path.split("?", 1)[0].removeprefix(prefix).strip("/")
            return [p for p in rest.split("/") if p]

        def do_GET(self) -> None:
            if self.path.startswith("/health"):
                self._reply(200, {})
            elif self.path.startswith("/v1/policies"):
                policies = [{"id": k, "raw": v} for k, v in state.modules.items()]
                self._reply(200, {"result": policies})
            elif self.path.startswith("/v1/data"):
                value = state.get_data(self._path("/v1/data"))
                self._reply(200, {} if value is None else {"result": value})
            else:
                self._reply(404, {"code": "resource_not_found", "message": self.path})

        def do_PUT(self) -> None:
            body = self._body()
            if self.path.startswith("/v1/policies/"):
                error = state.put_policy("/".join(self._path("/v1/policies")), body.decode())
                if error:
                    self._reply(400, {"code": "invalid_parameter", "message": error})
                else:
                    self._reply(200, {})
            elif self.path.startswith("/v1/data"):
                try:
                    value = json.loads(body or b"null")
                except json.JSONDecodeError as exc:
                    self._reply(400, {"code": "invalid_parameter", "message": str(exc)})
                    return
                state.put_data(self._path("/v1/data"), value)
                self._reply(204)
            else:
                self._reply(404, {"code": "resource_not_found", "message": self.path})

        def do_POST(self) -> None:
            if not self.path.startswith("/v1/data"):
                self._reply(404, {"code": "resource_not_found", "message": self.path})
                return
            try:
                request = json.loads(self._body() or b"{}")
                defined, value = state.query(self._path("/v1/data"), request.get("input"))
            except Exception as exc:
                self._reply(500, {"code": "internal_error", "message": str(exc)})
                return
            self._reply(200, {"result": value} if defined else {})

    return Handler
