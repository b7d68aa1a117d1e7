"""``keras.datasets``: ``mnist`` and ``fashion_mnist``, read from local IDX files (never downloaded).

>>> from cnnlab.keras.datasets import mnist
>>> mnist.load_data.__name__
'load_data'
"""

from cnnlab.keras.datasets import fashion_mnist, mnist

__all__ = ["fashion_mnist", "mnist"]
