"""unet3plus: the published MindSpore UNet 3+ (LiTS2017 liver segmentation) as a drop-in pretrained module."""
from ._compat import check_mindspore_version
from ._runtime import apply_cpu_defaults

check_mindspore_version()  # one line naming the supported range, before anything imports MindSpore
apply_cpu_defaults()  # must run before MindSpore's first convolution; see _runtime.py

from .networks import UNet3Plus  # noqa: E402  (after the runtime defaults on purpose)
from .networks.fusion import optimize_for_inference  # noqa: E402
from .hub import (LoadReport, ModelConfig, create_network, list_models, load_checkpoint,  # noqa: E402
                  pretrained_checkpoint, read_model_config)
from .runtime.predict import predict  # noqa: E402
from .evaluation import evaluate  # noqa: E402
from ._version import __version__  # noqa: E402

__all__ = ["LoadReport", "ModelConfig", "UNet3Plus", "__version__", "create_network", "evaluate", "list_models",
           "load_checkpoint", "optimize_for_inference", "predict", "pretrained_checkpoint", "read_model_config"]
