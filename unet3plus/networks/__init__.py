"""Network definitions."""
from .base import ENCODER_WIDTHS, SIZE_MULTIPLE, FeatureInfo, FeatureMaps, UNet3PlusBase, decoder_branches
from .unet3plus import UNet3Plus
from .variants import ABSENT_LOGIT, ClassificationGuidedModule, class_presence, gate_logits

__all__ = [
    "ABSENT_LOGIT",
    "ClassificationGuidedModule",
    "ENCODER_WIDTHS",
    "FeatureInfo",
    "FeatureMaps",
    "SIZE_MULTIPLE",
    "UNet3Plus",
    "UNet3PlusBase",
    "class_presence",
    "decoder_branches",
    "gate_logits",
]
