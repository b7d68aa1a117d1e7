"""cnnlab: learn, build, train, explain and ship convolutional neural networks on a laptop CPU.

>>> import cnnlab
>>> isinstance(cnnlab.__version__, str)
True
"""

from importlib.metadata import PackageNotFoundError, version

from cnnlab import layers, show
from cnnlab.layers.summary import summary
from cnnlab.models import create_model, list_models
from cnnlab.sequential import Model, Sequential, load_model_yaml
from cnnlab.train import TrainConfig, Trainer

try:
    __version__ = version("cnnlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Model",
    "Sequential",
    "TrainConfig",
    "Trainer",
    "__version__",
    "create_model",
    "layers",
    "list_models",
    "load_model_yaml",
    "show",
    "summary",
]
