"""The speed plan shared by training and inference: the device (:mod:`.device`), precision and memory layout
(:mod:`.precision`), fast dropout masks (:mod:`.fast_dropout`), and the inference fast path with its compile
decision (:mod:`.inference`).

Imports only :mod:`cnnlab.core` and :mod:`cnnlab.layers` (the multiply-add counter), so the trainer, the
evaluators and the server all read one plan.
"""
