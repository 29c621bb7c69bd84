"""unet3plus: the published MindSpore UNet 3+ (LiTS2017 liver segmentation) as a drop-in pretrained module."""
from ._runtime import apply_cpu_defaults

apply_cpu_defaults()  # must run before MindSpore's first convolution; see _runtime.py

from .networks import UNet3Plus  # noqa: E402  (after the runtime defaults on purpose)
from .hub import (LoadReport, ModelConfig, create_network, download_checkpoint, load_checkpoint,  # noqa: E402
                  read_model_config)
from .inference import predict  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LoadReport", "ModelConfig", "UNet3Plus", "__version__", "create_network", "download_checkpoint", "load_checkpoint",
           "predict", "read_model_config"]
