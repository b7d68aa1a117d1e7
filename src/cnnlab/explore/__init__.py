"""``cnnlab explore``: a local page that shows what YOUR model does with an image: every layer's output maps
with its arithmetic (output size formula, parameters, multiply-adds, receptive field), one unit's receptive
field, kernel and dot product, Grad-CAM per class, and a unit's top-9 patches over a folder of images.

:class:`Explorer` computes the answers (no web framework needed); :func:`create_app` serves them with FastAPI
(``pip install 'cnnlab[serve]'``).

>>> from cnnlab.explore import Explorer, zoo_subject
>>> explorer = Explorer(zoo_subject("lenet5"))
>>> [layer.label for layer in explorer.layers if layer.type == "Conv2d"]
['features.0', 'features.3']
"""

from cnnlab.explore.app import create_app
from cnnlab.explore.explorer import Explorer
from cnnlab.explore.layers import SUPPORTED, Layer, describe_layers
from cnnlab.explore.subject import Subject, subject_of, zoo_subject

__all__ = ["SUPPORTED", "Explorer", "Layer", "Subject", "create_app", "describe_layers", "subject_of", "zoo_subject"]
