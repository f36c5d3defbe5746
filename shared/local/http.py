"""The REST API on 127.0.0.1: what API Gateway's Lambda proxy integration does, locally.

Each request becomes a REST proxy event (payload version 1.0) for the function the stack's
`AWS_PROXY` method integrates, invoked through Lambda's Invoke API on the local endpoint:
API Gateway calls Invoke too, so the function is found, dispatched and JSON-(de)serialized
exactly as for every other trigger. The clock endpoints exist only here (the handlers never
see the local runtime): `GET /v1/clock`, `POST /v1/clock/advance`.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from .clock import format_instant, parse_instant
from .scheduler import ClockError

log = logging.getLogger("shared.local")
HOP_BY_HOP = {"content-length", "connection", "transfer-encoding", "keep-alive"}


class HttpAdapter:
    def __init__(self, runtime, port: int = 3000, host: str = "127.0.0.1"):
        self.runtime = runtime
        self.function, self.stage = _proxy_target(runtime)
        self.server = ThreadingHTTPServer((host, port), _handler_class(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="http-adapter",
                                        daemon=True)

    def start(self) -> HttpAdapter:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: only when it runs
            self.server.shutdown()
        self.server.server_close()

    # -- one request -----------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list, bytes]:
        path = urlsplit(request.path).path
        if path in ("/v1/clock", "/v1/clock/advance"):
            return self._clock(request, path, body)
        event = self.proxy_event(request, body)
        response = self.runtime.clients("lambda").invoke(FunctionName=self.function,
                                                         Payload=json.dumps(event))
        payload = response["Payload"].read()
        if "FunctionError" in response:
            log.error("%s %s: %s", request.command, path, payload[:2000].decode(errors="replace"))
            return _bad_gateway()
        return _proxy_response(payload, event["requestContext"]["requestId"])

    def proxy_event(self, request: BaseHTTPRequestHandler, body: bytes) -> dict:
        url = urlsplit(request.path)
        path = unquote(url.path) or "/"
        headers, multi_headers = {}, {}
        for name, value in request.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query, multi_query = {}, {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        text = _text(body)
        now = datetime.now(UTC)
        resource = "/" if path == "/" else "/{proxy+}"
        return {
            "resource": resource,
            "path": path,
            "httpMethod": request.command,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": None if path == "/" else {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "resourceId": "local",
                "resourcePath": resource,
                "httpMethod": request.command,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "protocol": request.request_version,
                "requestId": str(uuid.uuid4()),
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "domainName": request.headers.get("Host", ""),
                "identity": {"sourceIp": request.client_address[0],
                             "userAgent": request.headers.get("User-Agent")},
            },
            "body": text if text is not None or not body else base64.b64encode(body).decode(),
            "isBase64Encoded": text is None and bool(body),
        }

    def _clock(self, request, path: str, body: bytes) -> tuple[int, list, bytes]:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.runtime.api_key}".encode()):
            return _error(401, "authentication_error", "invalid_api_key",
                          "send the local API key as 'Authorization: Bearer <key>'")
        if path == "/v1/clock" and request.command == "GET":
            return _json(200, {"now": format_instant(self.runtime.clock_now())})
        if path == "/v1/clock" or request.command != "POST":
            return _error(405, "invalid_request_error", "method_not_allowed",
                          f"{request.command} {path} is not supported")
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "invalid_request_error", "invalid_json", "the body is not JSON")
        if not isinstance(params, dict) or not params.get("to"):
            return _error(422, "invalid_request_error", "parameter_missing", "'to' is required",
                          "to")
        try:
            fired = self.runtime.advance_clock(parse_instant(str(params["to"])))
        except ClockError as error:
            return _error(422, "invalid_request_error", "clock_backwards", str(error), "to")
        except ValueError as error:
            return _error(422, "invalid_request_error", "validation_failed", str(error), "to")
        return _json(200, {"now": format_instant(self.runtime.clock_now()), "fired": fired})


def _handler_class(adapter: HttpAdapter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def _serve(self) -> None:
            started = time.perf_counter()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, headers, payload = adapter.handle(self, body)
            except Exception:
                log.exception("%s %s", self.command, self.path)
                status, headers, payload = _bad_gateway()
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            log.info("%s %s -> %d (%.0f ms)", self.command, self.path, status,
                     (time.perf_counter() - started) * 1000)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        def log_message(self, *args) -> None:  # _serve logs instead
            pass

    return Handler


def _proxy_target(runtime) -> tuple[str, str]:
    """The function behind the stack's proxy method, and the stage name (from the template)."""
    deployment, function = runtime.deployment, None
    for method in deployment.of_type("AWS::ApiGateway::Method"):
        integration = method.properties.get("Integration", {})
        if integration.get("Type") == "AWS_PROXY":
            function = _get_att_target(integration.get("Uri"))
    stages = [s.properties.get("StageName") for s in deployment.of_type("AWS::ApiGateway::Stage")]
    physical = deployment.resources[function].physical_id if function else \
        runtime.function_name("api")
    return physical, next(filter(None, stages), "local")


def _get_att_target(value) -> str | None:
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        value = list(value.values())
    if isinstance(value, list):
        return next(filter(None, map(_get_att_target, value)), None)
    return None


def _proxy_response(payload: bytes, request_id: str) -> tuple[int, list, bytes]:
    try:
        result = json.loads(payload)
        status = int(result["statusCode"])
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    except (ValueError, KeyError, TypeError):
        log.error("malformed Lambda proxy response: %s", payload[:500])
        return _bad_gateway()
    multi = {k: list(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    for name, value in (result.get("headers") or {}).items():
        if str(value) not in multi.setdefault(name, []):
            multi[name].append(str(value))
    headers = [(k, str(v)) for k, values in multi.items() for v in values
               if k.lower() not in HOP_BY_HOP]
    return status, headers + [("x-amzn-RequestId", request_id)], data


def _text(body: bytes) -> str | None:
    """The body as API Gateway passes it without binary media types: text, else base64."""
    if not body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _json(status: int, data: dict) -> tuple[int, list, bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(data).encode()


def _error(status: int, kind: str, code: str, message: str, param: str | None = None):
    return _json(status, {"error": {"type": kind, "code": code, "message": message,
                                    "param": param}})


def _bad_gateway() -> tuple[int, list, bytes]:
    return _json(502, {"message": "Internal server error"})
