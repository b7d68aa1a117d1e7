"""The FastAPI app: ``/predict``, ``/explain``, ``/segment``, ``/detect``, ``/health``, ``/model`` and the page ``/``.

Uploads are an image as the multipart field ``file`` (what the page sends) or as the raw body with an
``image/*`` Content-Type (``curl --data-binary @cat.png -H 'Content-Type: image/png'``). Bodies over
the limit get 413, anything that is not a readable image 400, all with ``{"detail": "..."}``; no
request data is written to disk. Model work runs in the thread pool, so the event loop keeps
answering while a request computes.

FastAPI is imported inside :func:`create_app`, so importing this module needs only the core packages.
"""

import io
import time
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from cnnlab.core.errors import ConfigError
from cnnlab.data.images import to_8bit
from cnnlab.serve.model import ServedModel
from cnnlab.serve.upload import MAX_PIXELS, MAX_UPLOAD_BYTES, UploadRejected, decode_image, image_bytes, read_limited

VIEW_SIDE = 320  # the explanation picture is scaled up so its shorter side is at least this many pixels
MAX_SEGMENT_SIDE = 1024  # larger images are scaled down before segmentation (bounded CPU time per request)
PALETTE = np.array([[0, 114, 178], [230, 159, 0], [0, 158, 115], [204, 121, 167], [213, 94, 0], [86, 180, 233]])
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'"  # no inline code
STATIC = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}


def create_app(
    served: ServedModel, max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS, default_top_k: int = 5
) -> Any:
    """A FastAPI app serving ``served``; ``default_top_k`` is the default number of classes ``/predict`` returns."""
    try:
        from fastapi import FastAPI, Query, Request
        from fastapi.responses import JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise ConfigError("FastAPI is not installed", where="cnnlab serve", fix="pip install 'cnnlab[serve]'") from None

    card = served.card
    app = FastAPI(title=f"cnnlab: {card.name}", version="1", docs_url="/docs", redoc_url=None)
    pages = {
        route: (files("cnnlab.serve").joinpath("static", name).read_bytes(), kind)
        for route, (name, kind) in STATIC.items()
    }

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(UploadRejected)
    async def rejected(request: Request, exc: UploadRejected) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ConfigError)
    async def bad_setting(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def upload(request: Request) -> Image.Image:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_upload_bytes:  # refuse before reading when the client says so
            raise UploadRejected(
                f"upload is larger than the limit of {max_upload_bytes:,} bytes", status=413, fix="send a smaller image"
            )
        body = await read_limited(request.stream(), max_upload_bytes)
        data = image_bytes(body, request.headers.get("content-type", ""))
        return await run_in_threadpool(decode_image, data, max_pixels)

    def unavailable(endpoint: str, why: str, fix: str, status: int) -> JSONResponse:
        return JSONResponse({"detail": f"/{endpoint} is not available: {why}. Fix: {fix}"}, status_code=status)

    for route, (content, kind) in pages.items():
        app.add_api_route(route, _static(Response, content, kind), methods=["GET"], include_in_schema=False)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": card.name, "task": card.task, "runtime": served.runtime}

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        return {**served.info(), "limits": {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}}

    @app.post("/predict")
    async def predict(request: Request, top_k: int = Query(default_top_k, ge=1, le=1000)) -> Any:
        if "predict" not in served.routes:
            why = f"'{card.name}' is a {card.task} model"
            return unavailable("predict", why, f"POST the image to {' or '.join('/' + r for r in served.routes)}", 404)
        image = await upload(request)
        start = time.perf_counter()
        probs = await run_in_threadpool(lambda: served.predict(card.preprocess(image)[None])[0])
        order = np.argsort(-probs, kind="stable")[: min(top_k, len(probs))]
        top = [{"index": int(i), "label": card.classes[i], "probability": round(float(probs[i]), 6)} for i in order]
        elapsed = round((time.perf_counter() - start) * 1000, 2)
        return {"model": card.name, "runtime": served.runtime, "top": top, "elapsed_ms": elapsed}

    @app.post("/explain")
    async def explain(request: Request, target: str | None = Query(None, description="class name or index")) -> Any:
        if not served.can_explain:
            why = (
                f"'{card.name}' is a {card.task} model"
                if "explain" not in served.routes
                else "Grad-CAM needs the PyTorch model's gradients, which an .onnx file does not carry"
            )
            return unavailable("explain", why, "serve the checkpoint: cnnlab serve CHECKPOINT", 422)
        image = await upload(request)
        index = None if target is None else _class_index(card.classes, target)
        png, index, probability = await run_in_threadpool(_explain_png, served, image, index)
        headers = {
            "X-Class-Index": str(index),
            "X-Class-Label": quote(card.classes[index]),  # percent-encoded: headers are Latin-1
            "X-Class-Probability": f"{probability:.6f}",
        }
        return Response(png, media_type="image/png", headers=headers)

    @app.post("/segment")
    async def segment(request: Request, view: str = Query("mask", pattern="^(mask|overlay)$")) -> Any:
        if "segment" not in served.routes or served.segmenter is None:
            why = f"'{card.name}' is a {card.task} model, and /segment needs a segmentation model"
            return unavailable("segment", why, "serve a `cnnlab train --task segment` checkpoint", 404)
        image = await upload(request)
        png = await run_in_threadpool(_segment_png, served, image, view)
        return Response(png, media_type="image/png")

    @app.post("/detect")
    async def detect(
        request: Request,
        view: str = Query("json", pattern="^(json|picture)$"),
        score: float = Query(0.25, ge=0.0, le=1.0, description="keep boxes scoring at least this"),
    ) -> Any:
        if "detect" not in served.routes or served.detector is None:
            why = f"'{card.name}' is a {card.task} model, and /detect needs a detector"
            return unavailable("detect", why, "serve a `cnnlab train --task detect` checkpoint", 404)
        image = await upload(request)
        started = time.perf_counter()
        pixels = np.asarray(to_8bit(image, 3), dtype=np.uint8)
        found = await run_in_threadpool(served.detect, pixels, score)
        elapsed = round(1000 * (time.perf_counter() - started), 1)
        labels = [card.classes[i] for i in found["labels"].tolist()]
        if view == "picture":
            picture = served.detector.draw(pixels, found, score)
            return Response(_png(picture), media_type="image/png", headers={"X-Detections": str(len(labels))})
        boxes = [[round(v, 1) for v in box] for box in found["boxes"].tolist()]
        scores = [round(v, 4) for v in found["scores"].tolist()]
        return {"boxes": boxes, "labels": labels, "scores": scores, "elapsed_ms": elapsed}

    return app


def _static(response: Any, content: bytes, kind: str) -> Any:
    def page() -> Any:
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}  # /docs loads a CDN: not there
        return response(content, media_type=kind, headers=headers)

    return page


def _class_index(classes: tuple[str, ...], target: str) -> int:
    """A class name or index from the query, checked.

    >>> _class_index(("cat", "dog"), "dog"), _class_index(("cat", "dog"), "0")
    (1, 0)
    """
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    raise ConfigError(f"unknown class '{target}'", where="target", fix=f"use a class name or 0..{len(classes) - 1}")


def _explain_png(served: ServedModel, image: Image.Image, target: int | None) -> tuple[bytes, int, float]:
    from cnnlab.explain import overlay

    x = served.card.preprocess(image)[None]  # (1, C, H, W)
    heatmap, index, probability = served.explain(x, target)
    pixels = served.card.to_image(x[0])  # (H, W, C): what the model saw
    view = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    scale = max(1.0, VIEW_SIDE / min(view.size))
    view = view.resize((round(view.width * scale), round(view.height * scale)), Image.Resampling.BILINEAR)
    return _png(overlay(np.asarray(view), heatmap)), index, probability


def _segment_png(served: ServedModel, image: Image.Image, view: str) -> bytes:
    image = to_8bit(image, served.card.input_size[0])
    image.thumbnail((MAX_SEGMENT_SIDE, MAX_SEGMENT_SIDE), Image.Resampling.BILINEAR)  # only ever shrinks
    pixels = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, -1)  # (H, W, C)
    mask = served.segment(pixels)  # (H, W) class indices
    if view == "mask":
        scale = 255 if len(served.card.classes) == 2 else 1  # binary masks as 0/255, as `cnnlab predict` writes them
        return _png((mask * scale).astype(np.uint8))
    rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
    tint = PALETTE[mask % len(PALETTE)]  # (H, W, 3)
    return _png((0.6 * rgb + 0.4 * tint).astype(np.uint8))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
