"""Keras-style layers over torch.nn, fixed kernels (Sobel, Scharr) and summary() (imports core only)."""
