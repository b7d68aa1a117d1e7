"""Uploads, in memory only: a bounded body, the image part (or named file parts) of a multipart form, a file
with its name (series, recordings, clips, volumes: the name's suffix says how to read it), and a guarded decode.

Nothing here touches the file system: the body is read into memory up to a byte limit (then refused
with 413), multipart parts are collected by callbacks (python-multipart's parser, not Starlette's
form reader, which spools large files to a temporary file), and Pillow decodes from ``BytesIO``.

>>> import io
>>> from PIL import Image
>>> buffer = io.BytesIO()
>>> Image.new("RGB", (3, 2), (9, 9, 9)).save(buffer, format="PNG")
>>> decode_image(buffer.getvalue()).size
(3, 2)
>>> decode_image(b"not an image")
Traceback (most recent call last):
...
cnnlab.data.uploads.UploadRejected: not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP) [upload]...
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import AsyncIterator, Sequence

from PIL import Image, UnidentifiedImageError

from cnnlab.core.errors import DataError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
"""Default upload limit; a larger body is refused with 413 before it is all read."""

MAX_PIXELS = 40_000_000
"""Images with more pixels are refused (400) as possible decompression bombs, from the header alone."""

FIELD = "file"
"""The multipart field the page and the docs use (any part with a file name is accepted)."""


class UploadRejected(DataError):
    """An upload the server will not process; ``status`` is the HTTP status to answer with (400 or 413)."""

    def __init__(self, what: str, *, status: int = 400, fix: str | None = None) -> None:
        super().__init__(what, where="upload", fix=fix)
        self.status = status


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Join an async byte stream, refusing (413) as soon as it grows past ``limit`` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise UploadRejected(
                f"upload is larger than the limit of {limit:,} bytes", status=413, fix="send a smaller image"
            )
    return bytes(body)


def image_bytes(body: bytes, content_type: str) -> bytes:
    """The image in a request body: the file part of ``multipart/form-data``, or the raw body (``image/*``).

    >>> image_bytes(b"abc", "image/png")
    b'abc'
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        data = _file_part(body, content_type)
    elif kind.startswith("image/") or kind == "application/octet-stream":
        data = body
    else:
        raise UploadRejected(
            f"unsupported Content-Type '{kind or 'none'}'",
            fix=f"send the image as multipart/form-data field '{FIELD}', or as the raw body with an image/* type",
        )
    if not data:
        raise UploadRejected("the upload is empty (0 bytes)", fix="pick an image file")
    return data


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode image bytes fully in memory; corrupt, non-image or oversized data is an :class:`UploadRejected`.

    Oversized means more than ``max_pixels``, judged from the header before decoding (decompression bombs).

    >>> big = io.BytesIO()
    >>> Image.new("L", (4000, 2000)).save(big, format="PNG")
    >>> decode_image(big.getvalue(), max_pixels=4_000_000)
    Traceback (most recent call last):
    ...
    cnnlab.data.uploads.UploadRejected: image is too large: 4000x2000 = 8 MP; the limit is 4 MP [upload]. Fix: ...
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels below is the limit
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise _too_large(f"{width}x{height} = {width * height / 1e6:.3g} MP", max_pixels)
        image.load()  # decode now: truncated data fails here, not later in a worker
    except UploadRejected:
        raise
    except Image.DecompressionBombError as exc:  # over twice Pillow's own limit: refused before the size is known
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels[1]) / 1e6:.3g} MP" if pixels else "over Pillow's limit"
        raise _too_large(size, min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS)) from None
    except UnidentifiedImageError:
        raise UploadRejected(
            "not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP)", fix="upload an image file"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow reports truncated or corrupt data this way
        raise UploadRejected(f"corrupt or truncated image ({exc})", fix="re-export the image") from None
    return image


def _too_large(size: str, max_pixels: int) -> UploadRejected:
    """The one refusal for every oversized image (status 400, as for any image the server will not decode)."""
    return UploadRejected(
        f"image is too large: {size}; the limit is {max_pixels / 1e6:.3g} MP", fix="send a smaller image"
    )


def form_files(body: bytes, content_type: str, names: Sequence[str]) -> dict[str, bytes]:
    r"""The file parts named ``names`` of a ``multipart/form-data`` body (``/verify``'s two photos), each required
    and non-empty: a missing or empty one is refused (400) naming it.

    >>> form = (
    ...     b"--B\r\nContent-Disposition: form-data; name=\"first\"; filename=\"a.png\"\r\n\r\nAAA\r\n"
    ...     b"--B\r\nContent-Disposition: form-data; name=\"second\"; filename=\"b.png\"\r\n\r\nBB\r\n--B--\r\n"
    ... )
    >>> form_files(form, "multipart/form-data; boundary=B", ["first", "second"])
    {'first': b'AAA', 'second': b'BB'}
    >>> form_files(form, "multipart/form-data; boundary=B", ["first", "third"])
    Traceback (most recent call last):
    ...
    cnnlab.data.uploads.UploadRejected: the form has no file 'third' [upload]. Fix: send the files ...
    """
    fields = " and ".join(f"'{name}'" for name in names)
    fix = f"send the files {fields} as multipart/form-data fields"
    kind = content_type.split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        raise UploadRejected(f"unsupported Content-Type '{kind or 'none'}'", fix=fix)
    found = {
        options.get(b"name", b"").decode("utf-8", "replace"): data for options, data in _form_parts(body, content_type)
    }
    for name in names:
        if name not in found:
            raise UploadRejected(f"the form has no file '{name}'", fix=fix)
        if not found[name]:
            raise UploadRejected(f"the file '{name}' is empty (0 bytes)", fix=f"pick an image file for '{name}'")
    return {name: found[name] for name in names}


def decode_named(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`decode_image`, its refusals saying which upload they are about (``name``, e.g. "the second photo").

    >>> decode_named(b"not an image", "the second photo")
    Traceback (most recent call last):
    ...
    cnnlab.data.uploads.UploadRejected: the second photo: not an image Pillow can read (PNG, JPEG, BMP, ...
    """
    try:
        return decode_image(data, max_pixels)
    except UploadRejected as exc:
        raise UploadRejected(f"{name}: {exc.what}", status=exc.status, fix=exc.fix) from None


def named_file(body: bytes, content_type: str, name: str | None = None) -> tuple[str, bytes]:
    r"""An uploaded file and its name: the file part of a ``multipart/form-data`` body with the file name the client
    gave, or the raw body named by ``name`` (the ``?name=`` of ``curl --data-binary @a.wav '...?name=a.wav'``).
    Only the base name is kept (no folders).

    >>> form = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x/a.wav\"\r\n\r\nRIFF\r\n--B--\r\n"
    >>> named_file(form, "multipart/form-data; boundary=B")
    ('a.wav', b'RIFF')
    >>> named_file(b"1,2,3", "text/csv", "row.csv")
    ('row.csv', b'1,2,3')
    >>> named_file(b"1,2,3", "text/csv")
    Traceback (most recent call last):
    ...
    cnnlab.data.uploads.UploadRejected: the upload has no file name, so its format is unknown [upload]. Fix: ...
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        for disposition, data in _form_parts(body, content_type):
            if disposition.get(b"name") == FIELD.encode() or b"filename" in disposition:
                name = disposition.get(b"filename", b"").decode("utf-8", "replace") or name
                body = data
                break
        else:
            raise UploadRejected(f"the form has no file part (field '{FIELD}')", fix=f"send the file in '{FIELD}'")
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", ".."):
        raise UploadRejected(
            "the upload has no file name, so its format is unknown",
            fix=f"send it as multipart/form-data field '{FIELD}' with its file name, or add ?name=FILE.EXT",
        )
    if not body:
        raise UploadRejected(f"{base} is empty (0 bytes)", fix="pick another file")
    return base, body


def _file_part(body: bytes, content_type: str) -> bytes:
    for disposition, data in _form_parts(body, content_type):
        if disposition.get(b"name") == FIELD.encode() or b"filename" in disposition:
            return data
    raise UploadRejected(f"the form has no file part (field '{FIELD}')", fix=f"send the image in the field '{FIELD}'")


def _form_parts(body: bytes, content_type: str) -> list[tuple[dict[bytes, bytes], bytes]]:
    """Each part of a multipart form: its Content-Disposition options (``name``, ``filename``) and its bytes."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise UploadRejected("multipart upload without a boundary", fix="let the browser or client build the form")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        parts.append(({}, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][header["field"].strip().lower()] = header["value"].strip()
        header["field"], header["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types for malformed forms
        raise UploadRejected(
            f"malformed multipart form ({type(exc).__name__})", fix="send a well-formed form"
        ) from None
    return [(parse_options_header(headers.get(b"content-disposition", b""))[1], bytes(data)) for headers, data in parts]
