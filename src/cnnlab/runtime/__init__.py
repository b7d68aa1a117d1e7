"""The speed plan shared by training and inference: precision and memory layout (:mod:`.precision`), fast
dropout masks (:mod:`.fast_dropout`), and the inference fast path with its compile decision (:mod:`.inference`).

Imports :mod:`cnnlab.core` only, so the trainer, the evaluators and the server all read one plan.
"""
