"""Transfer learning: new heads on pretrained zoo models, freezing by layer groups, cached feature
extraction, input adaptation and the two-phase ``fine_tune`` schedule (see docs/transfer.md)."""

from cnnlab.transfer.features import (
    Features,
    FeatureTrainer,
    TailTrainer,
    backbone_digest,
    backbone_tail,
    default_cache_dir,
    extract_features,
    feature_key,
    set_mlp_head,
    train_head,
)
from cnnlab.transfer.finetune import (
    TransferConfig,
    fine_tune,
    fit_transfer,
    head_classes,
    load_pretrained,
    pretrained_spec,
)
from cnnlab.transfer.groups import FrozenBatchNormEval, LayerGroup, freeze, frozen_bn_eval, layer_groups, param_groups
from cnnlab.transfer.inputs import InputSpec, adapt_dataset, adapt_images, input_spec, with_normalisation

__all__ = [
    "FeatureTrainer",
    "Features",
    "FrozenBatchNormEval",
    "InputSpec",
    "LayerGroup",
    "TailTrainer",
    "TransferConfig",
    "adapt_dataset",
    "adapt_images",
    "backbone_digest",
    "backbone_tail",
    "default_cache_dir",
    "extract_features",
    "feature_key",
    "fine_tune",
    "fit_transfer",
    "freeze",
    "frozen_bn_eval",
    "head_classes",
    "input_spec",
    "layer_groups",
    "load_pretrained",
    "param_groups",
    "pretrained_spec",
    "set_mlp_head",
    "train_head",
    "with_normalisation",
]
