"""Network definitions."""
from .unet3plus import ENCODER_WIDTHS, SIZE_MULTIPLE, UNet3Plus, decoder_branches

__all__ = ["ENCODER_WIDTHS", "SIZE_MULTIPLE", "UNet3Plus", "decoder_branches"]
