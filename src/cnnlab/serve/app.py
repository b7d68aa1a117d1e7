"""The FastAPI app: ``/predict``, ``/explain``, ``/segment``, ``/detect``, ``/verify``, ``/embed``, ``/health``,
``/model`` and the page ``/``.

Uploads are an image as the multipart field ``file`` (what the page sends) or as the raw body with an
``image/*`` Content-Type (``curl --data-binary @cat.png -H 'Content-Type: image/png'``); ``/verify`` takes
two photos as the multipart fields ``first`` and ``second`` (``curl -F first=@a.jpg -F second=@b.jpg``), each
up to the limit. A sequence model's ``/predict`` and ``/explain`` take a file (a WAV recording, a series file,
a clip or volume ``.npy``/``.nii.gz``) as the field ``file`` with its name (``curl -F file=@seven.wav``), or as
the raw body named by ``?name=``. Bodies over the limit get 413, anything that is not a readable image (or
file) 400, a photo where no face is found 422, all with ``{"detail": "..."}``. No request data is written to
disk, except a sequence model's upload, which its reader takes from a private temporary folder deleted when
the request is answered. Model work runs in the thread pool, so the event loop keeps answering while a
request computes.

FastAPI is imported inside :func:`create_app`, so importing this module needs only the core packages.
"""

import io
import time
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import numpy as np
import torch
from PIL import Image, ImageOps

from cnnlab.core.errors import ConfigError, DataError, WeightsError
from cnnlab.data.images import to_8bit
from cnnlab.data.uploads import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    UploadRejected,
    decode_image,
    decode_named,
    form_files,
    image_bytes,
    named_file,
    read_limited,
)
from cnnlab.serve.model import Face, ServedModel

VIEW_SIDE = 320  # the explanation picture is scaled up so its shorter side is at least this many pixels
MAX_SEGMENT_SIDE = 1024  # larger images are scaled down before segmentation (bounded CPU time per request)
PALETTE = np.array([[0, 114, 178], [230, 159, 0], [0, 158, 115], [204, 121, 167], [213, 94, 0], [86, 180, 233]])
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'"  # no inline code
PHOTOS = ("first", "second")  # /verify's multipart fields
FACES_PATTERN = "^(auto|detect|none)$"
FACES_HELP = "auto: find the face (a small picture without one is taken whole); detect: a face is required; none: whole"
NO_FACE_FIX = (
    "send a photo with the face at least ~40 pixels wide and some background around it, "
    "or faces=none for photos that are already face crops"
)
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
    a_task = f"{'an' if card.task[:1] in 'aeiou' else 'a'} {card.task}"  # "a classify", "an embed"
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

    @app.exception_handler(WeightsError)
    async def no_weights(request: Request, exc: WeightsError) -> JSONResponse:  # the face weights, loaded on first use
        return JSONResponse({"detail": f"{exc} (or send faces=none: no face weights needed)"}, status_code=503)

    async def body(request: Request, limit: int) -> bytes:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:  # refuse before reading when the client says so
            raise UploadRejected(
                f"upload is larger than the limit of {limit:,} bytes", status=413, fix="send a smaller image"
            )
        return await read_limited(request.stream(), limit)

    async def upload(request: Request) -> Image.Image:
        data = image_bytes(await body(request, max_upload_bytes), request.headers.get("content-type", ""))
        return await run_in_threadpool(decode_image, data, max_pixels)

    async def photos(request: Request) -> list[Image.Image]:
        """/verify's two photos, each up to the limit; a refusal names the photo."""
        parts = form_files(
            await body(request, len(PHOTOS) * max_upload_bytes), request.headers.get("content-type", ""), PHOTOS
        )
        for name, data in parts.items():
            if len(data) > max_upload_bytes:
                raise UploadRejected(
                    f"the {name} photo is larger than the limit of {max_upload_bytes:,} bytes",
                    status=413,
                    fix="send a smaller image",
                )
        return [await run_in_threadpool(decode_named, parts[name], f"the {name} photo", max_pixels) for name in PHOTOS]

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

    async def uploaded_file(request: Request, name: str | None) -> tuple[str, bytes]:
        return named_file(await body(request, max_upload_bytes), request.headers.get("content-type", ""), name)

    @app.post("/predict")
    async def predict(
        request: Request,
        top_k: int = Query(default_top_k, ge=1, le=1000),
        name: str | None = Query(
            None, description="a raw-body file's name (sequence models: its suffix is its format)"
        ),
    ) -> Any:
        if "predict" not in served.routes:
            why = f"'{card.name}' is {a_task} model"
            return unavailable("predict", why, f"POST the image to {' or '.join('/' + r for r in served.routes)}", 404)
        if served.sequence is not None:
            file_name, data = await uploaded_file(request, name)
            start = time.perf_counter()
            answer = await run_in_threadpool(served.predict_file, file_name, data, top_k)
            elapsed = round((time.perf_counter() - start) * 1000, 2)
            return {"model": card.name, "runtime": served.runtime, **answer, "elapsed_ms": elapsed}
        image = await upload(request)
        start = time.perf_counter()
        probs = await run_in_threadpool(lambda: served.predict(card.preprocess(image)[None])[0])
        order = np.argsort(-probs, kind="stable")[: min(top_k, len(probs))]
        top = [{"index": int(i), "label": card.classes[i], "probability": round(float(probs[i]), 6)} for i in order]
        elapsed = round((time.perf_counter() - start) * 1000, 2)
        return {"model": card.name, "runtime": served.runtime, "top": top, "elapsed_ms": elapsed}

    @app.post("/explain")
    async def explain(
        request: Request,
        target: str | None = Query(None, description="class name or index"),
        name: str | None = Query(
            None, description="a raw-body file's name (sequence models: its suffix is its format)"
        ),
    ) -> Any:
        if served.sequence is not None:
            file_name, data = await uploaded_file(request, name)
            png, index, probability = await run_in_threadpool(served.explain_file, file_name, data)
            return Response(png, media_type="image/png", headers=_class_headers(card.classes, index, probability))
        if not served.can_explain:
            why = (
                f"'{card.name}' is {a_task} model"
                if "explain" not in served.routes
                else "Grad-CAM needs the PyTorch model's gradients, which an .onnx file does not carry"
            )
            return unavailable("explain", why, "serve the checkpoint: cnnlab serve CHECKPOINT", 422)
        image = await upload(request)
        index = None if target is None else _class_index(card.classes, target)
        png, index, probability = await run_in_threadpool(_explain_png, served, image, index)
        return Response(png, media_type="image/png", headers=_class_headers(card.classes, index, probability))

    @app.post("/segment")
    async def segment(request: Request, view: str = Query("mask", pattern="^(mask|overlay)$")) -> Any:
        if "segment" not in served.routes or served.segmenter is None:
            why = f"'{card.name}' is {a_task} model, and /segment needs a segmentation model"
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
            why = f"'{card.name}' is {a_task} model, and /detect needs a detector"
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

    def no_embedder(endpoint: str) -> JSONResponse:
        why = f"'{card.name}' is {a_task} model, and /{endpoint} needs an embedder"
        return unavailable(endpoint, why, "serve a `cnnlab train --task embed` run, or dlib_resnet29", 404)

    @app.post("/verify")
    async def verify(
        request: Request,
        faces: str = Query("auto", pattern=FACES_PATTERN, description=FACES_HELP),
        threshold: float | None = Query(None, ge=0.0, description="same person at or below this distance"),
    ) -> Any:
        if not served.can_verify:
            return no_embedder("verify")
        images = await photos(request)
        started = time.perf_counter()
        limit = served.embedder.threshold if threshold is None else threshold  # type: ignore[union-attr]
        answer = await run_in_threadpool(_verify, served, images, faces, limit)
        return {"model": card.name, **answer, "elapsed_ms": round(1000 * (time.perf_counter() - started), 1)}

    @app.post("/embed")
    async def embed(request: Request, faces: str = Query("auto", pattern=FACES_PATTERN, description=FACES_HELP)) -> Any:
        if not served.can_verify:
            return no_embedder("embed")
        image = await upload(request)
        started = time.perf_counter()
        chip, vector = await run_in_threadpool(_embed_one, served, image, faces, "the photo")
        embedding = [round(v, 6) for v in vector.tolist()]
        elapsed = round(1000 * (time.perf_counter() - started), 1)
        return {"model": card.name, "embedding": embedding, **_face_json(chip), "elapsed_ms": elapsed}

    return app


def _static(response: Any, content: bytes, kind: str) -> Any:
    def page() -> Any:
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}  # /docs loads a CDN: not there
        return response(content, media_type=kind, headers=headers)

    return page


def _class_headers(classes: tuple[str, ...], index: int, probability: float) -> dict[str, str]:
    """The class an explanation picture is about, as response headers."""
    return {
        "X-Class-Index": str(index),
        "X-Class-Label": quote(classes[index]),  # percent-encoded: headers are Latin-1
        "X-Class-Probability": f"{probability:.6f}",
    }


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


def _face(served: ServedModel, image: Image.Image, faces: str, name: str) -> Face:
    """The face in one photo; the front-end finding none (its NoFaceFound, a DataError) is a 422 naming ``name``."""
    try:
        return served.face(_rgb(image), faces, name)
    except DataError as exc:
        raise UploadRejected(exc.what, status=422, fix=NO_FACE_FIX) from None


def _embed_one(served: ServedModel, image: Image.Image, faces: str, name: str) -> tuple[Face, torch.Tensor]:
    """One photo's face and its embedding ``(D,)``."""
    chip = _face(served, image, faces, name)
    return chip, served.embed([chip.pixels])[0]


def _verify(served: ServedModel, images: list[Image.Image], faces: str, threshold: float) -> dict[str, Any]:
    """Both photos' faces, the distance of their embeddings and the verdict at ``threshold``."""
    chips = [_face(served, image, faces, f"the {name} photo") for image, name in zip(images, PHOTOS, strict=True)]
    first, second = served.embed([chip.pixels for chip in chips])
    distance = float((first - second).norm())
    return {
        "distance": round(distance, 4),
        "threshold": round(threshold, 6),
        "same": distance <= threshold,
        "faces": faces,
        **{name: _face_json(chip) for name, chip in zip(PHOTOS, chips, strict=True)},
    }


def _face_json(chip: Face) -> dict[str, Any]:
    """What the front-end did with a photo: its note, and the face box in the photo's pixels (None: the whole)."""
    return {"face": chip.note, "box": None if chip.box is None else [round(v, 1) for v in chip.box]}


def _rgb(image: Image.Image) -> np.ndarray:
    """A decoded upload as uint8 RGB ``(H, W, 3)``, turned upright as its EXIF says (as a browser shows it)."""
    return np.asarray(to_8bit(ImageOps.exif_transpose(image), 3), dtype=np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
