"""Detection networks: the YOLO-style grid + anchors detector (registered with ``task="detect"``), and the
course's ladder before it (not registered: they are built by ``cnnlab ladder``): classification with
localisation (``localise``), landmark regression (``landmarks``), a sliding-window classifier and its
fully convolutional form (``sliding``), and MTCNN's pretrained P-Net (``pnet``) and O-Net (``onet``, five
face landmarks)."""

from cnnlab.models.detect import landmarks, localise, onet, pnet, sliding, yolo

__all__ = ["landmarks", "localise", "onet", "pnet", "sliding", "yolo"]
