"""The bare applications of ``bench/stack.py``: one per framework, each a factory that uvicorn
and granian call (``--factory``). Each has two endpoints, with the same documents:

- ``POST /bare``: a fixed JSON body (the request body is not read), what most framework
  benchmarks measure;
- ``POST /validated``: the request body read as a recommendation request with the framework's
  own validation (basket of 0..100 non-empty strings, k in 1..50, exclude of 0..100), and an
  answer of a fixed shape built from it: what a typed JSON API pays before any scoring;

and ``GET /ready`` for the benchmark to know the server is up.
"""

# no `from __future__ import annotations`: the frameworks read the handlers' types at runtime,
# and those types are local to each factory

from typing import Annotated, Any

BARE_BODY = {"items": [{"item": "85123A", "score": 0.5, "fallback": False}], "model": "bare"}
ITEMS = [{"item": f"2{i:04d}", "score": 0.5 / (i + 1), "fallback": i > 2} for i in range(50)]


def _answer(basket: list[str], k: int) -> dict[str, Any]:
    return {"items": ITEMS[:k], "unknown": basket[:1], "model": "validated"}


def fastapi_app() -> Any:
    from fastapi import FastAPI
    from pydantic import BaseModel, Field

    item = Annotated[str, Field(min_length=1, max_length=128)]

    class Request(BaseModel):
        model_config = {"extra": "forbid", "strict": True}
        basket: Annotated[list[item], Field(max_length=100)]
        k: Annotated[int, Field(ge=1, le=50)] = 5
        exclude: Annotated[list[item], Field(max_length=100)] = []

    class Item(BaseModel):
        item: str
        score: float
        fallback: bool

    class Answer(BaseModel):
        items: list[Item]
        unknown: list[str]
        model: str

    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict[str, Any]:
        return {}

    @app.post("/bare")
    async def bare() -> dict[str, Any]:
        return BARE_BODY

    @app.post("/validated")
    async def validated(request: Request) -> Answer:
        return Answer(**_answer(request.basket, request.k))

    return app


def litestar_app() -> Any:
    import msgspec
    from litestar import Litestar, get, post
    from msgspec import Meta

    item = Annotated[str, Meta(min_length=1, max_length=128)]

    class Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        basket: Annotated[list[item], Meta(max_length=100)]
        k: Annotated[int, Meta(ge=1, le=50)] = 5
        exclude: Annotated[list[item], Meta(max_length=100)] = []

    class Item(msgspec.Struct):
        item: str
        score: float
        fallback: bool

    class Answer(msgspec.Struct):
        items: list[Item]
        unknown: list[str]
        model: str

    items = [Item(**i) for i in ITEMS]

    @get("/ready")
    async def ready() -> dict[str, Any]:
        return {}

    @post("/bare", status_code=200)
    async def bare() -> dict[str, Any]:
        return BARE_BODY

    @post("/validated", status_code=200)
    async def validated(data: Request) -> Answer:
        return Answer(items=items[: data.k], unknown=data.basket[:1], model="validated")

    return Litestar(route_handlers=[ready, bare, validated], openapi_config=None)


def starlette_app() -> Any:
    import json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def bare(request: Request) -> JSONResponse:
        return JSONResponse(BARE_BODY)

    async def validated(request: Request) -> JSONResponse:
        # no validation library in Starlette: the checks by hand, as such a service would
        data = json.loads(await request.body())
        basket, k = data["basket"], data.get("k", 5)
        if not (isinstance(basket, list) and len(basket) <= 100 and isinstance(k, int)
                and 1 <= k <= 50 and all(isinstance(i, str) and 0 < len(i) <= 128
                                         for i in basket)):
            return JSONResponse({"error": "invalid"}, status_code=422)
        return JSONResponse(_answer(basket, k))

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({})

    return Starlette(routes=[Route("/ready", ready), Route("/bare", bare, methods=["POST"]),
                             Route("/validated", validated, methods=["POST"])])


def raw_asgi_app() -> Any:
    """No framework: an ASGI callable answering every request with the fixed body (the floor
    under every framework)."""
    import json

    body = json.dumps(BARE_BODY).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:  # read (and drop) the request body
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
