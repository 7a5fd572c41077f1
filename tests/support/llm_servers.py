"""Loopback LLM servers that speak the real wire protocols, for tests and bench/llm.py.

`OpenAIServer` answers `/v1/chat/completions` (JSON or SSE streaming, with `usage`) and can be
told to fail: 429 with Retry-After, 500, a slow answer (client timeout), a context-length error.
`OllamaServer` answers `/api/chat` and `/api/generate` (NDJSON streaming), `/api/tags`,
`/api/ps` (with configurable `size` / `size_vram`), `/api/show`, and 404 for missing models.
Both can also misbehave the way real servers do under faults (`garbage`, `hang`, `dropped`,
`truncated`, and `always` for a failure that never stops, such as 429 forever).
Both count requests and record their bodies, so tests can prove a call was (not) made.
`RecordingLog` is the step log the plugin tests read back.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Reply = str | Callable[[dict[str, Any]], str]


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[Any, threading.Thread]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


class RecordingLog:
    """A StepLogger that keeps every line, at every level."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    warning = error = debug = info


def _words(text: str) -> int:
    return max(1, len(text.split()))


@dataclass
class Failure:
    """One programmed failure: an HTTP status with a body, or a delay before answering.

    `raw` replaces the JSON body (garbage); `hang` never answers (until the server stops);
    `drop` sends the response head and `raw` as the first part of a stream, then closes the
    connection; `truncate` ends the stream cleanly after `raw`, without its final message."""

    status: int = 500
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    hang: bool = False
    drop: bool = False
    truncate: bool = False


class _Base:
    """Request log, programmed failures and replies shared by both servers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body)
        self.failures: dict[str, list[Failure]] = {}  # model -> failures to return, in order
        self.always: dict[str, Failure] = {}  # model -> the failure of every request
        self.stopping = threading.Event()  # ends hanging requests when the server stops
        self.replies: dict[str, Reply] = {}
        self.delay = 0.0  # seconds each generation takes (concurrency tests)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def calls(self, path: str) -> list[dict[str, Any]]:
        """Bodies of the requests made to `path`."""
        return [body for _, p, body in self.requests if p == path]

    def fail(self, model: str, *failures: Failure) -> None:
        """The next requests for `model` get these failures, one each, then normal answers."""
        self.failures.setdefault(model, []).extend(failures)

    def fail_always(self, model: str, failure: Failure) -> None:
        """Every request for `model` gets `failure`, for ever (429 forever, a hung server)."""
        self.always[model] = failure

    def reply(self, model: str, reply: Reply) -> None:
        self.replies[model] = reply

    def attempts(self, model: str) -> int:
        """Generation requests made for `model` (whatever their answer)."""
        return sum(1 for _, _, body in self.requests if body.get("model") == model)

    def _next_failure(self, model: str) -> Failure | None:
        with self._lock:
            queue = self.failures.get(model)
            if queue:
                return queue.pop(0)
            return self.always.get(model)

    def _text_for(self, model: str, body: dict[str, Any], prompt: str) -> str:
        reply = self.replies.get(model)
        if reply is None:
            return f"{model} says: {prompt}"
        return reply(body) if callable(reply) else reply

    @contextlib.contextmanager
    def _generating(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def start(self) -> _Base:
        self.stopping.clear()
        self._server, self._thread = _serve(self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else {}

            def do_GET(self) -> None:
                owner.requests.append(("GET", self.path, {}))
                owner._route(self, "GET", self.path, {})

            def do_POST(self) -> None:
                body = self._body()
                owner.requests.append(("POST", self.path, body))
                owner._route(self, "POST", self.path, body)

            def do_HEAD(self) -> None:
                owner.requests.append(("HEAD", self.path, {}))
                send_json(self, 200, {})

        return Handler

    def _route(self, request: Any, method: str, path: str, body: dict[str, Any]) -> None:
        raise NotImplementedError


def send_json(
    request: Any, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(payload).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    request.wfile.write(data)


def _send_chunked_start(request: Any, content_type: str) -> None:
    request.send_response(200)
    request.send_header("Content-Type", content_type)
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()


def _send_chunk(request: Any, data: bytes) -> None:
    request.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    request.wfile.flush()


def _end_chunks(request: Any) -> None:
    request.wfile.write(b"0\r\n\r\n")
    request.wfile.flush()


def _apply_failure(request: Any, failure: Failure | None, stopping: threading.Event) -> bool:
    """Send the failure's answer; True when the request is done (an error was sent)."""
    if failure is None:
        return False
    if failure.hang:
        stopping.wait()  # no answer, ever: only the client's timeout ends the wait
        request.close_connection = True
        return True
    if failure.delay:
        time.sleep(failure.delay)
    if failure.drop or failure.truncate:
        content_type = failure.headers.get("Content-Type", "application/json")
        _send_chunked_start(request, content_type)
        _send_chunk(request, failure.raw or b"")
        if failure.truncate:
            _end_chunks(request)
        else:
            request.connection.shutdown(socket.SHUT_RDWR)  # gone mid-stream
        request.close_connection = True
        return True
    if failure.raw is not None:
        request.send_response(failure.status)
        for key, value in {"Content-Type": "application/json", **failure.headers}.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(failure.raw)))
        request.end_headers()
        request.wfile.write(failure.raw)
        return True
    if failure.status == 200:
        return False  # only a delay
    send_json(request, failure.status, failure.body, failure.headers)
    return True


def garbage(body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> Failure:
    """A 200 whose body is not JSON (a proxy's error page)."""
    return Failure(200, raw=body)


def hang() -> Failure:
    """A server that accepts the request and never answers."""
    return Failure(200, hang=True)


# ---------------------------------------------------------------- OpenAI-compatible


def rate_limited(retry_after: float = 0) -> Failure:
    return Failure(
        429,
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}},
        {"Retry-After": f"{retry_after:g}"},
    )


def server_error(message: str = "upstream exploded") -> Failure:
    return Failure(500, {"error": {"message": message, "type": "server_error", "code": None}})


def context_too_long() -> Failure:
    return Failure(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 16 tokens. However, your "
                "messages resulted in 4000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    )


def slow(seconds: float) -> Failure:
    return Failure(200, delay=seconds)


def dropped() -> Failure:
    """The connection closes halfway through the JSON answer."""
    return Failure(200, raw=b'{"id": "chatcmpl-x", "object": "chat.comp', drop=True)


class OpenAIServer(_Base):
    """`/v1/chat/completions` and `/v1/models`, as the OpenAI API answers them."""

    def __init__(self, name: str = "openai") -> None:
        super().__init__()
        self.name = name  # put in the `system_fingerprint`, to tell deployments apart
        self.tool_calls: dict[str, tuple[str, dict[str, Any]]] = {}  # model -> (name, args)

    def call_tool(self, model: str, name: str, arguments: dict[str, Any]) -> None:
        """`model` answers requests that offer tools with a call of `name`."""
        self.tool_calls[model] = (name, arguments)

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def _route(self, request: Any, method: str, path: str, body: dict[str, Any]) -> None:
        if method == "GET" and path.rstrip("/") == "/v1/models":
            send_json(request, 200, {"object": "list", "data": []})
            return
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            send_json(request, 404, {"error": {"message": f"no route {path}"}})
            return
        model = body.get("model", "")
        if _apply_failure(request, self._next_failure(model), self.stopping):
            return
        messages = body.get("messages") or []
        prompt_text = " ".join(str(m.get("content") or "") for m in messages)
        last = str(messages[-1].get("content") or "") if messages else ""
        with self._generating():
            text = self._text_for(model, body, last)
        finish = "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit and _words(text) > limit:  # a "token" is a word here
            text, finish = " ".join(text.split()[:limit]), "length"
        usage = {
            "prompt_tokens": _words(prompt_text),
            "completion_tokens": _words(text),
            "total_tokens": _words(prompt_text) + _words(text),
        }
        created = int(time.time())
        ident = f"chatcmpl-{len(self.requests)}"
        if body.get("stream"):
            self._stream(request, ident, created, model, text, usage, body)
            return
        message: dict[str, Any] = {"role": "assistant", "content": text}
        tool = self.tool_calls.get(model) if body.get("tools") else None
        if tool is not None:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": tool[0], "arguments": json.dumps(tool[1])},
                    }
                ],
            }
            finish = "tool_calls"
        send_json(
            request,
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": self.name,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _stream(
        self,
        request: Any,
        ident: str,
        created: int,
        model: str,
        text: str,
        usage: dict[str, int],
        body: dict[str, Any],
    ) -> None:
        _send_chunked_start(request, "text/event-stream")

        def chunk(delta: dict[str, Any], finish: str | None, extra: dict[str, Any]) -> None:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": self.name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            _send_chunk(request, f"data: {json.dumps(payload)}\n\n".encode())

        chunk({"role": "assistant", "content": ""}, None, {})
        for index, word in enumerate(text.split(" ")):
            chunk({"content": word if index == 0 else f" {word}"}, None, {})
        chunk({}, "stop", {})
        if (body.get("stream_options") or {}).get("include_usage"):
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            _send_chunk(request, f"data: {json.dumps(payload)}\n\n".encode())
        _send_chunk(request, b"data: [DONE]\n\n")
        _end_chunks(request)


# ---------------------------------------------------------------- Ollama


@dataclass
class OllamaModel:
    """A model the Ollama server has pulled; `size_vram` set means it is loaded (`/api/ps`)."""

    name: str
    size: int  # bytes
    size_vram: int | None = None  # None: not loaded; 0: loaded on CPU; == size: all on GPU

    @property
    def loaded(self) -> bool:
        return self.size_vram is not None


MIB = 1024 * 1024


def _ollama_line(model: str, text: str) -> bytes:
    line = {
        "model": model,
        "created_at": "2026-11-25T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "response": text,
        "done": False,
    }
    return (json.dumps(line) + "\n").encode()


def ollama_dropped(model: str) -> Failure:
    """An NDJSON stream that stops after its first token: the connection closes."""
    headers = {"Content-Type": "application/x-ndjson"}
    return Failure(200, headers=headers, raw=_ollama_line(model, "Once"), drop=True)


def ollama_truncated(model: str) -> Failure:
    """An NDJSON stream that ends cleanly after its first token, without its `done` line."""
    headers = {"Content-Type": "application/x-ndjson"}
    return Failure(200, headers=headers, raw=_ollama_line(model, "Once"), truncate=True)


class OllamaServer(_Base):
    """The Ollama HTTP API: generation, model listing and the loaded-model view."""

    def __init__(self, models: list[OllamaModel] | None = None, load_on_gpu: bool = True) -> None:
        super().__init__()
        self.models = {m.name: m for m in models or []}
        self.load_on_gpu = load_on_gpu  # what happens to a model that a request loads

    def _route(self, request: Any, method: str, path: str, body: dict[str, Any]) -> None:
        routes: dict[tuple[str, str], Callable[[Any, dict[str, Any]], None]] = {
            ("GET", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("GET", "/api/version"): lambda r, _: send_json(r, 200, {"version": "0.12.0"}),
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): lambda r, b: self._generate(r, b, chat=True),
            ("POST", "/api/generate"): lambda r, b: self._generate(r, b, chat=False),
        }
        route = routes.get((method, path.rstrip("/")))
        if route is None:
            send_json(request, 404, {"error": f"no route {path}"})
            return
        route(request, body)

    def _details(self) -> dict[str, Any]:
        return {
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3B",
            "quantization_level": "Q4_K_M",
        }

    def _tags(self, request: Any, body: dict[str, Any]) -> None:
        send_json(
            request,
            200,
            {
                "models": [
                    {
                        "name": m.name,
                        "model": m.name,
                        "modified_at": "2026-11-01T00:00:00Z",
                        "size": m.size,
                        "digest": f"sha256:{abs(hash(m.name)):064x}"[:71],
                        "details": self._details(),
                    }
                    for m in self.models.values()
                ]
            },
        )

    def _ps(self, request: Any, body: dict[str, Any]) -> None:
        send_json(
            request,
            200,
            {
                "models": [
                    {
                        "name": m.name,
                        "model": m.name,
                        "size": m.size,
                        "size_vram": m.size_vram,
                        "digest": f"sha256:{abs(hash(m.name)):064x}"[:71],
                        "expires_at": "2099-01-01T00:00:00Z",
                        "details": self._details(),
                    }
                    for m in self.models.values()
                    if m.loaded
                ]
            },
        )

    def _missing(self, request: Any, name: str) -> None:
        send_json(request, 404, {"error": f"model '{name}' not found"})

    def _show(self, request: Any, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if name not in self.models:
            self._missing(request, name)
            return
        send_json(
            request,
            200,
            {
                "modelfile": f"FROM {name}",
                "parameters": "num_ctx 4096",
                "template": "{{ .Prompt }}",
                "details": self._details(),
                "model_info": {"general.architecture": "llama", "llama.context_length": 4096},
                "capabilities": ["completion"],
            },
        )

    def _generate(self, request: Any, body: dict[str, Any], *, chat: bool) -> None:
        name = body.get("model", "")
        model = self.models.get(name)
        if model is None:
            self._missing(request, name)
            return
        if _apply_failure(request, self._next_failure(name), self.stopping):
            return
        if chat:
            messages = body.get("messages") or []
            prompt = str(messages[-1].get("content") or "") if messages else ""
        else:
            prompt = str(body.get("prompt") or "")
        with self._generating():
            if not model.loaded:
                model.size_vram = model.size if self.load_on_gpu else 0
            text = self._text_for(name, body, prompt)
        words = text.split(" ")
        tokens = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
        final = {
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_500_000_000,
            "load_duration": 100_000_000,
            "prompt_eval_count": _words(prompt),
            "prompt_eval_duration": 200_000_000,
            "eval_count": len(tokens),
            "eval_duration": 1_200_000_000,
        }
        if not chat:
            final["context"] = [1, 2, 3]

        def line(token: str, done: bool) -> dict[str, Any]:
            base: dict[str, Any] = {"model": name, "created_at": "2026-11-25T00:00:00Z"}
            if chat:
                base["message"] = {"role": "assistant", "content": token}
            else:
                base["response"] = token
            return {**base, **(final if done else {"done": False})}

        if body.get("stream", True) is False:
            send_json(request, 200, line(text, True))
            return
        _send_chunked_start(request, "application/x-ndjson")
        for token in tokens:
            _send_chunk(request, (json.dumps(line(token, False)) + "\n").encode())
        _send_chunk(request, (json.dumps(line("", True)) + "\n").encode())
        _end_chunks(request)


# ---------------------------------------------------------------- LiteLLM deployments

IN_PRICE, OUT_PRICE = 0.001, 0.002
"""USD per token of `priced` deployments."""


def deployment(
    name: str, server: OpenAIServer, model: str | None = None, **params: Any
) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"openai/{model or name}",
            "api_base": server.api_base,
            "api_key": "sk-test",
            **params,
        },
    }


def priced(name: str, server: OpenAIServer, model: str | None = None) -> dict[str, Any]:
    return deployment(
        name, server, model, input_cost_per_token=IN_PRICE, output_cost_per_token=OUT_PRICE
    )
