"""unet3plus: the published MindSpore UNet 3+ (LiTS2017 liver segmentation) as a drop-in pretrained module."""
from ._runtime import apply_cpu_defaults

apply_cpu_defaults()  # must run before MindSpore's first convolution; see _runtime.py

from .networks import UNet3Plus  # noqa: E402  (after the runtime defaults on purpose)
from .networks.fusion import optimize_for_inference  # noqa: E402
from .hub import (LoadReport, ModelConfig, create_network, list_models, load_checkpoint,  # noqa: E402
                  pretrained_checkpoint, read_model_config)
from .inference import predict  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LoadReport", "ModelConfig", "UNet3Plus", "__version__", "create_network", "list_models", "load_checkpoint",
           "optimize_for_inference", "predict", "pretrained_checkpoint", "read_model_config"]
