"""``keras.preprocessing``: :mod:`~cnnlab.keras.preprocessing.image` (``ImageDataGenerator``, ``load_img``).

>>> from cnnlab.keras.preprocessing.image import ImageDataGenerator
>>> ImageDataGenerator(rescale=1 / 255).rescale
0.00392156862745098
"""

from cnnlab.keras.preprocessing import image

__all__ = ["image"]
