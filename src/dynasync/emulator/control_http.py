"""The control plane over HTTP: ``/_emulator/...`` routes (JSON in and out, loopback clients only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dynasync.emulator.errors import EmulatorError

if TYPE_CHECKING:
    from dynasync.emulator.app import Emulator

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def _json(document: object, status: int = 200) -> Response:
    return Response(orjson.dumps(document, default=str), status, media_type="application/json")


def control_routes(emulator: Emulator) -> list[BaseRoute]:
    """Routes of ``/_emulator`` (JSON in and out; loopback clients only)."""

    def endpoint(action: Any) -> Any:
        async def run(request: Request) -> Response:
            client = request.client.host if request.client else None
            if client not in LOOPBACK:
                return _json({"error": "the control plane only answers loopback clients"}, 403)
            body: dict[str, Any] = {}
            raw = await request.body()
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return _json({"error": "the body is not JSON"}, 400)
            try:
                result = action(request, body)
            except EmulatorError as error:
                return _json({"error": error.message, "code": error.code}, error.status)
            except (ValueError, KeyError, TypeError) as error:
                return _json({"error": str(error)}, 400)
            return _json(result if result is not None else {"ok": True})

        return run

    e = emulator

    def act(request: Request, body: dict[str, Any]) -> Any:
        response = e.call(
            body.get("method", "GET"),
            body["path"],
            body.get("body"),
            as_user=body.get("as_user"),
            headers=body.get("headers"),
        )
        document = orjson.loads(response.body) if response.body else None
        return {"status": response.status, "headers": response.headers, "body": document}

    def faults(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            e.faults.clear()
            return None
        if request.method == "GET":
            return e.faults.pending()
        return e.faults.inject(
            body["kind"],
            count=int(body.get("count", 1)),
            retry_after=int(body.get("retry_after", 1)),
            seconds=float(body.get("seconds", 30.0)),
            path_contains=body.get("path_contains"),
        ).to_dict()

    table = "{table}"
    return [
        Route("/", endpoint(lambda r, b: e.state()), methods=["GET"]),
        Route("/reset", endpoint(lambda r, b: e.reset(b.get("seed"))), methods=["POST"]),
        Route("/seed", endpoint(lambda r, b: e.seed(b)), methods=["POST"]),
        Route("/act", endpoint(act), methods=["POST"]),
        Route("/faults", endpoint(faults), methods=["GET", "POST", "DELETE"]),
        Route(
            "/clock",
            endpoint(
                lambda r, b: {
                    "now": e.advance_clock(float(b.get("seconds", 0)), days=float(b.get("days", 0)))
                }
            ),
            methods=["POST"],
        ),
        Route("/change-tokens/expire", endpoint(lambda r, b: e.expire_change_tokens()), methods=["POST"]),
        Route("/settings", endpoint(lambda r, b: e.update_settings(**b)), methods=["PATCH", "POST"]),
        Route(
            f"/tables/{table}/change-tracking",
            endpoint(
                lambda r, b: e.set_change_tracking(r.path_params["table"], bool(b.get("enabled", True)))
            ),
            methods=["POST"],
        ),
        Route(
            "/tables", endpoint(lambda r, b: {"logical_name": e.add_table(b).logical_name}), methods=["POST"]
        ),
        Route(
            f"/tables/{table}/columns",
            endpoint(lambda r, b: e.add_column(r.path_params["table"], b)),
            methods=["POST"],
        ),
        Route("/apps", endpoint(lambda r, b: e.register_app(**b)), methods=["POST"]),
        Route(
            "/users",
            endpoint(
                lambda r, b: e.add_user(
                    b["upn"], b["password"], b.get("display_name", ""), in_org=b.get("in_org", True)
                )
            ),
            methods=["POST"],
        ),
    ]
