"""Network definitions."""
from .unet3plus import ENCODER_WIDTHS, SIZE_MULTIPLE, UNet3Plus, decoder_branches
from .variants import ABSENT_LOGIT, ClassificationGuidedModule, class_presence, gate_logits, gate_probabilities

__all__ = [
    "ABSENT_LOGIT",
    "ClassificationGuidedModule",
    "ENCODER_WIDTHS",
    "SIZE_MULTIPLE",
    "UNet3Plus",
    "class_presence",
    "decoder_branches",
    "gate_logits",
    "gate_probabilities",
]
