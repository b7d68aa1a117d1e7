"""cnnlab: learn, build, train, explain and ship convolutional neural networks on a laptop CPU.

>>> import cnnlab
>>> isinstance(cnnlab.__version__, str)
True
"""

from importlib.metadata import PackageNotFoundError, version

from cnnlab.models import create_model, list_models

try:
    __version__ = version("cnnlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "create_model", "list_models"]
