"""The prediction server: a FastAPI app over a served model, and a page at ``/`` (``cnnlab serve``).

Importing this package needs only the core packages; :func:`create_app` needs ``cnnlab[serve]``.

>>> from cnnlab.serve import RUNTIMES
>>> RUNTIMES
('auto', 'onnx', 'torch')
"""

from cnnlab.data.uploads import MAX_PIXELS, MAX_UPLOAD_BYTES, UploadRejected
from cnnlab.serve.app import create_app
from cnnlab.serve.model import RUNTIMES, ServedModel, load_served

__all__ = ["MAX_PIXELS", "MAX_UPLOAD_BYTES", "RUNTIMES", "ServedModel", "UploadRejected", "create_app", "load_served"]
