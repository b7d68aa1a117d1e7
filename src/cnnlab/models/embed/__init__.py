"""Embedding networks: the L2-normalised embedding head on any zoo classifier and the course's siamese
head (``head``), and dlib's pretrained ResNet-29 face embedder (``dlib_resnet``, registered with
``task="embed"``)."""

from cnnlab.models.embed import dlib_resnet, head

__all__ = ["dlib_resnet", "head"]
