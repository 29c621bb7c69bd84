"""PyTorch UNet3+ with the package network's exact architecture, for side-by-side benchmarks only.

Parameter names mirror the MindSpore network (``conv1.conv.0.weight``, ``h1_PT_hd4_conv.weight``, ...),
BatchNorm's ``gamma/beta/moving_mean/moving_variance`` becoming ``weight/bias/running_mean/running_var``,
so a MindSpore checkpoint loads by renaming alone. Architecture facts: 3x3 convolutions without bias,
BatchNorm eps 1e-5 (MindSpore's momentum 0.9 is PyTorch's 0.1), bilinear ``align_corners=True``
up-sampling *before* each up-branch convolution, max-pool down-branches, 80-channel fusion per stage.

    python benchmarks/torch_unet3plus.py [--checkpoint PATH]   # checks logits against MindSpore's
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ENCODER_WIDTHS = (16, 32, 64, 128, 256)
BRANCH_CHANNELS = 16
BN_RENAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def conv_bn_relu(in_channels: int, out_channels: int) -> List[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1), nn.ReLU(inplace=True)]


class UNetConv2(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(*conv_bn_relu(in_channels, out_channels), *conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def decoder_branches(stage: int, n_levels: int) -> List[Tuple[str, int, str, int]]:
    """(name, level, resample, factor) for the five branches of a decoder stage, published order."""
    branches = []
    for level in range(1, n_levels + 1):
        if level < stage:
            branches.append((f"h{level}_PT_hd{stage}", level, "pool", 2 ** (stage - level)))
        elif level == stage:
            branches.append((f"h{level}_Cat_hd{stage}", level, "none", 1))
        else:
            branches.append((f"hd{level}_UT_hd{stage}", level, "up", 2 ** (level - stage)))
    return branches


class TorchUNet3Plus(nn.Module):
    def __init__(self, in_channels: int = 3, n_classes: int = 1) -> None:
        super().__init__()
        n_levels = len(ENCODER_WIDTHS)
        fused = BRANCH_CHANNELS * n_levels
        previous = in_channels
        for level, width in enumerate(ENCODER_WIDTHS, start=1):
            setattr(self, f"conv{level}", UNetConv2(previous, width))
            previous = width
        self.plan = []
        for stage in range(n_levels - 1, 0, -1):
            branches = decoder_branches(stage, n_levels)
            for name, level, resample, _ in branches:
                if level <= stage:
                    branch_in = ENCODER_WIDTHS[level - 1]
                else:
                    branch_in = ENCODER_WIDTHS[-1] if level == n_levels else fused
                setattr(self, f"{name}_conv", nn.Conv2d(branch_in, BRANCH_CHANNELS, 3, padding=1, bias=False))
                setattr(self, f"{name}_bn", nn.BatchNorm2d(BRANCH_CHANNELS, eps=1e-5, momentum=0.1))
            setattr(self, f"conv{stage}d_1", nn.Conv2d(fused, fused, 3, padding=1, bias=False))
            setattr(self, f"bn{stage}d_1", nn.BatchNorm2d(fused, eps=1e-5, momentum=0.1))
            self.plan.append((stage, branches))
        self.outconv1 = nn.Conv2d(fused, n_classes, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        at_level = [self.conv1(x)]
        for level in range(2, len(ENCODER_WIDTHS) + 1):
            at_level.append(getattr(self, f"conv{level}")(F.max_pool2d(at_level[-1], 2, 2)))
        for stage, branches in self.plan:
            size = at_level[stage - 1].shape[-2:]
            outputs = []
            for name, level, resample, factor in branches:
                feature = at_level[level - 1]
                if resample == "pool":
                    feature = F.max_pool2d(feature, factor, factor)
                elif resample == "up":
                    feature = F.interpolate(feature, size=size, mode="bilinear", align_corners=True)
                feature = getattr(self, f"{name}_bn")(getattr(self, f"{name}_conv")(feature))
                outputs.append(F.relu(feature))
            fused = getattr(self, f"conv{stage}d_1")(torch.cat(outputs, 1))
            at_level[stage - 1] = F.relu(getattr(self, f"bn{stage}d_1")(fused))
        return self.outconv1(at_level[0])


def torch_state_dict(mindspore_arrays: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    """Rename MindSpore parameter names to this module's ``state_dict`` keys."""
    state = {}
    for name, value in mindspore_arrays.items():
        prefix, _, leaf = name.rpartition(".")
        state[f"{prefix}.{BN_RENAMES.get(leaf, leaf)}"] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def load_torch_network(mindspore_arrays: Dict[str, np.ndarray]) -> TorchUNet3Plus:
    """A TorchUNet3Plus in eval mode holding exactly the given MindSpore weights (strict load)."""
    net = TorchUNet3Plus()
    missing, unexpected = net.load_state_dict(torch_state_dict(mindspore_arrays), strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"weights do not fit TorchUNet3Plus: missing {missing}, unexpected {unexpected}")
    return net.eval()


def max_logit_difference(torch_net: TorchUNet3Plus, mindspore_net, batch: np.ndarray) -> float:
    """Largest |torch - mindspore| logit difference on ``batch`` (both in eval mode)."""
    import mindspore as ms

    with torch.no_grad():
        torch_logits = torch_net(torch.from_numpy(batch)).numpy()
    ms_logits = mindspore_net(ms.Tensor(batch)).asnumpy()
    return float(np.abs(torch_logits - ms_logits).max())


def check_against_mindspore(torch_net: TorchUNet3Plus, mindspore_net, batch: np.ndarray,
                            tolerance: float = 1e-3) -> float:
    """Raise unless both networks give the same logits; return the largest difference."""
    difference = max_logit_difference(torch_net, mindspore_net, batch)
    if not difference <= tolerance:
        raise AssertionError(f"PyTorch and MindSpore logits differ by {difference:.3g} (> {tolerance})")
    return difference


def main(argv: Sequence[str] = None) -> int:
    from _common import DEFAULT_CHECKPOINT, REFERENCE_DIR, load_mindspore_network, network_entries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    torch_net = load_torch_network(network_entries(args.checkpoint))
    mindspore_net = load_mindspore_network(args.checkpoint)
    golden = REFERENCE_DIR / "golden_io.npz"
    if golden.exists():
        with np.load(golden) as data:
            with torch.no_grad():
                logits = torch_net(torch.from_numpy(data["input"])).numpy()
            print(f"golden logits: max |torch - reference| = {np.abs(logits - data['logits']).max():.3g}")
    batch = np.random.default_rng(0).standard_normal((2, 3, args.size, args.size)).astype(np.float32)
    print(f"{args.size}x{args.size}: max |torch - mindspore| = {check_against_mindspore(torch_net, mindspore_net, batch):.3g}")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import unet3plus  # noqa: F401  (oneDNN default before MindSpore's first convolution)

    sys.exit(main())
