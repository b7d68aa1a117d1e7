"""``keras.preprocessing``: :mod:`~cnnlab.keras.preprocessing.image` (``ImageDataGenerator``, ``load_img``), and
``image_dataset_from_directory`` under the TF 2 name the course's transfer-learning notebook imports it by
(``from tensorflow.keras.preprocessing import image_dataset_from_directory``; the same function as
:func:`cnnlab.keras.utils.image_dataset_from_directory`).

>>> from cnnlab.keras.preprocessing.image import ImageDataGenerator
>>> ImageDataGenerator(rescale=1 / 255).rescale
0.00392156862745098
"""

from cnnlab.keras.preprocessing import image
from cnnlab.keras.utils import image_dataset_from_directory

__all__ = ["image", "image_dataset_from_directory"]
