"""Several FCNs trained side by side as one network: a deep ensemble (Lakshminarayanan et al. 2017) of
:mod:`~cnnlab.models.sequence.fcn` members at a fraction of the FCN's width, the ensembles of FCNs that Ismail
Fawaz et al. ("Deep Neural Network Ensembles for Time Series Classification", IJCNN 2019) found more accurate
than one FCN on UCR.

Each member is the FCN's three conv-BN-ReLU blocks (kernels 8, 5, 3) with ``width`` times its filters, global
average pooling and its own linear layer. They run as one network: the first convolution holds every member's
filters (they all read the same series), the later ones are grouped (member ``k`` reads only its own channels), each
member has its own linear layer (:class:`MemberLinear`). So four members at half width cost one FCN's multiply-adds
(4 x (64 x 128 x 5) = 128 x 256 x 5 for the middle layer) and have its parameter count within 1%.

``member_logits`` gives each member's logits ``(B, members, classes)``; training puts a cross-entropy on each
(:class:`~cnnlab.train.ensemble.EnsembleTrainer`, for any model with ``member_logits``), so the members learn
independently from their own random start. ``forward`` returns the log of the members' mean probabilities, so a
softmax of it is the ensemble's prediction and a cross-entropy of it the ensemble's loss: export, Grad-CAM and
serving see one classifier.

>>> import torch
>>> model = fcn_ensemble(num_classes=3)
>>> x = torch.randn(2, 1, 40)
>>> model.member_logits(x).shape, torch.allclose(model(x).exp().sum(1), torch.ones(2))  # probabilities
(torch.Size([2, 4, 3]), True)
>>> sum(p.numel() for p in fcn_ensemble().parameters())  # one FCN: 264,962
267784
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.registry import register_model
from cnnlab.models.sequence.fcn import FCN_FILTERS, FCN_KERNELS, GlobalPoolClassifier, conv_bn_relu_1d

PAPER = (
    "Wang, Yan, Oates 2017 (the FCN); Ismail Fawaz, Forestier, Weber, Idoumghar, Muller 2019, Deep Neural "
    "Network Ensembles for Time Series Classification"
)


def ensemble_log_probs(member_logits: torch.Tensor) -> torch.Tensor:
    """The log of the members' mean probabilities: ``(B, members, classes)`` logits -> ``(B, classes)``.

    >>> ensemble_log_probs(torch.tensor([[[0.0, 0.0], [0.0, 2.0 * math.log(3.0)]]])).exp()  # (0.5 + 0.1) / 2
    tensor([[0.3000, 0.7000]])
    """
    return torch.logsumexp(member_logits.log_softmax(-1), dim=1) - math.log(member_logits.shape[1])


class MemberLinear(nn.Module):
    """One ``Linear(in_features, out_features)`` per member, side by side: ``(B, members * in_features)`` ->
    ``(B, members, out_features)``, member ``k`` reading only its own features.

    >>> head = MemberLinear(2, 3, members=2)
    >>> head(torch.ones(4, 4)).shape, head.out_features
    (torch.Size([4, 2, 3]), 3)
    """

    def __init__(self, in_features: int, out_features: int, members: int) -> None:
        super().__init__()
        self.in_features, self.out_features, self.members = in_features, out_features, members
        bound = 1 / math.sqrt(in_features)  # nn.Linear's initialisation, member by member
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_member = x.reshape(x.shape[0], self.members, self.in_features)
        return torch.einsum("bki,koi->bko", per_member, self.weight) + self.bias


class FCNEnsemble(GlobalPoolClassifier):
    """``members`` FCNs of ``width`` times the filters as one module; see the module's docstring."""

    first_conv = "block1.0"
    gradcam_layer = "block3"
    feature_layers = ("block1", "block2", "block3")

    def __init__(self, num_classes: int = 2, in_chans: int = 1, members: int = 4, width: float = 0.5) -> None:
        super().__init__()
        if members < 1 or width <= 0:
            raise ConfigError(
                f"fcn_ensemble needs members >= 1 and width > 0. Received: members={members}, width={width}",
                where="fcn_ensemble",
                fix="e.g. members=4, width=0.5 (the default: one FCN's cost)",
            )
        self.members = members
        f1, f2, f3 = (members * max(1, round(width * n)) for n in FCN_FILTERS)
        k1, k2, k3 = FCN_KERNELS
        self.block1 = conv_bn_relu_1d(in_chans, f1, k1)  # every member's filters read the whole input
        self.block2 = conv_bn_relu_1d(f1, f2, k2, groups=members)
        self.block3 = conv_bn_relu_1d(f2, f3, k3, groups=members)
        self.num_features = f3
        self.fc = self._head(num_classes)

    def _head(self, num_classes: int) -> MemberLinear:
        return MemberLinear(self.num_features // self.members, num_classes, self.members)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block3(self.block2(self.block1(x)))  # (B, C, T) -> (B, members * filters, T)

    def member_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature maps ``(B, members * filters, T)`` -> each member's logits ``(B, members, classes)``."""
        return self.fc(features.mean(dim=-1))  # pooled over time: (B, members * filters)

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's logits for the series ``x`` ``(B, C, T)``: ``(B, members, classes)``."""
        return self.member_head(self.forward_features(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return ensemble_log_probs(self.member_head(x))  # (B, classes): log of the members' mean probabilities

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = self._head(num_classes)


@register_model("fcn_ensemble", paper=PAPER, default_input=(1, 128), task="sequence", min_size=1)
def fcn_ensemble(num_classes: int = 2, in_chans: int = 1, members: int = 4, width: float = 0.5) -> FCNEnsemble:
    """``members`` FCNs at ``width`` times the filters trained side by side; 267,784 parameters for 1 channel and
    2 classes at the defaults (4 at half width: one FCN's cost)."""
    return FCNEnsemble(num_classes, in_chans, members, width)
