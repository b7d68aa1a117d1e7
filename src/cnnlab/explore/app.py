"""The explorer's FastAPI app: the page at ``/`` and its JSON API under ``/api`` (what ``cnnlab explore`` serves).

- ``GET /api/model``: the model, every layer call with its arithmetic, the pictures on offer;
- ``POST /api/images`` (the image as the raw body, ``Content-Type: image/*``), ``POST /api/images/sample?name=``,
  ``POST /api/images/data?path=``: run the model on an image; answers its ``id``, notes and top classes;
- ``GET /api/images/{id}/input.png``: the picture the model saw;
- ``GET /api/images/{id}/layers/{index}``: a layer call's arithmetic and maps grid;
- ``GET /api/images/{id}/layers/{index}/unit?channel=&y=&x=``: one unit's value, receptive field and arithmetic;
- ``GET /api/images/{id}/cam?target=``: Grad-CAM of a class; ``GET /api/layers/{index}/top?channel=``: the top-9
  patches of a unit over ``--data``.

Images are decoded and kept in memory only. A bad setting answers 422, a bad image 400, an image the explorer
no longer holds 404, all as ``{"detail": "..."}``. FastAPI is imported inside :func:`create_app`.
"""

from importlib.resources import files
from typing import Any

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.images import MAX_PIXELS
from cnnlab.data.uploads import UploadRejected, decode_image
from cnnlab.explore.explorer import KEEP, Explorer, UnknownImage
from cnnlab.explore.samples import sample

MAX_UPLOAD_BYTES = 32 * 1024 * 1024
"""Larger uploads are refused (413) before they are read."""
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"  # no inline code
STATIC = {
    "/": ("index.html", "text/html"),
    "/explore.js": ("explore.js", "text/javascript"),
    "/explore.css": ("explore.css", "text/css"),
}


def create_app(explorer: Explorer, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> Any:
    """A FastAPI app answering the page's questions about ``explorer``'s model."""
    try:
        from fastapi import FastAPI, Query, Request
        from fastapi.responses import JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise ConfigError(
            "FastAPI is not installed", where="cnnlab explore", fix="pip install 'cnnlab[serve]'"
        ) from None

    app = FastAPI(title=f"cnnlab explore: {explorer.subject.name}", version="1", docs_url="/docs", redoc_url=None)
    pages = {
        route: (files("cnnlab.explore").joinpath("static", name).read_bytes(), kind)
        for route, (name, kind) in STATIC.items()
    }

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.update({"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})
        return response

    @app.exception_handler(ConfigError)
    async def bad_setting(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(DataError)
    async def bad_image(request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 400))

    @app.exception_handler(UnknownImage)
    async def unknown(request: Request, exc: UnknownImage) -> JSONResponse:
        detail = f"this image is no longer held (the explorer keeps the last {KEEP}): pick it again"
        return JSONResponse({"detail": detail}, status_code=404)

    for route, (content, kind) in pages.items():
        app.add_api_route(route, _static(Response, content, kind), methods=["GET"], include_in_schema=False)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": explorer.subject.name}

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        return explorer.info()

    @app.post("/api/images")
    async def upload(request: Request) -> Any:
        data = await _body(request, max_upload_bytes)
        image = await run_in_threadpool(decode_image, data, MAX_PIXELS)
        return await run_in_threadpool(explorer.look, image, "upload")

    @app.post("/api/images/sample")
    def builtin(name: str = Query(..., description="a built-in picture's name")) -> Any:
        return explorer.look(sample(name), f"built-in: {name}")

    @app.post("/api/images/data")
    def from_data(path: str = Query(..., description="an image's path inside the --data folder")) -> Any:
        return explorer.look(explorer.data_image(path), path)

    @app.get("/api/images/{image_id}/input.png")
    def input_png(image_id: str) -> Any:
        return Response(explorer.input_png(image_id), media_type="image/png")

    @app.get("/api/images/{image_id}/layers/{index}")
    def layer(image_id: str, index: int) -> Any:
        return explorer.layer_view(image_id, index)

    @app.get("/api/images/{image_id}/layers/{index}/unit")
    def unit(
        image_id: str, index: int, channel: int = Query(..., ge=0), y: int = Query(..., ge=0), x: int = Query(..., ge=0)
    ) -> Any:
        return explorer.unit_view(image_id, index, channel, y, x)

    @app.get("/api/images/{image_id}/cam")
    def cam(image_id: str, target: int | None = Query(None, ge=0, description="class index; none: predicted")) -> Any:
        return explorer.cam_view(image_id, target)

    @app.get("/api/layers/{index}/top")
    def top(index: int, channel: int = Query(..., ge=0)) -> Any:
        return explorer.top_view(index, channel)

    return app


async def _body(request: Any, limit: int) -> bytes:
    """The raw image body, refused (413) past ``limit`` bytes and (415) when it is not sent as an image."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (kind.startswith("image/") or kind == "application/octet-stream"):
        raise UploadRejected(
            f"unsupported Content-Type '{kind or 'none'}'",
            status=415,
            fix="send the image file as the body with an image/* type",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise UploadRejected(
            f"upload is larger than the limit of {limit:,} bytes", status=413, fix="send a smaller image"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadRejected(
                f"upload is larger than the limit of {limit:,} bytes", status=413, fix="send a smaller image"
            )
    if not body:
        raise UploadRejected("the upload is empty (0 bytes)", status=400, fix="pick an image file")
    return bytes(body)


def _static(response: Any, content: bytes, kind: str) -> Any:
    def page() -> Any:
        return response(
            content, media_type=kind, headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}
        )

    return page
