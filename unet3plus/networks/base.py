"""What every form of UNet3+ shares: the layout, input checks, the encoder/decoder walk, the feature map.

``UNet3Plus`` (trainable) and ``fusion.InferenceUNet3Plus`` (BatchNorm folded, eval-only) build different
layers under the same published attribute names and inherit one forward walk from :class:`UNet3PlusBase`,
so the two cannot drift apart. The contract a subclass fulfils is listed on the class.
"""
from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from mindspore import Tensor, nn, ops

from .blocks import nearest_multiples

ENCODER_WIDTHS: Tuple[int, ...] = (16, 32, 64, 128, 256)
BRANCH_CHANNELS = 16
FUSED_CHANNELS = BRANCH_CHANNELS * len(ENCODER_WIDTHS)  # 80: five branches concatenated
SIZE_MULTIPLE = 2 ** (len(ENCODER_WIDTHS) - 1)  # four 2x poolings: every encoder level must have an integer size


class Branch(NamedTuple):
    """One decoder branch: where its input comes from and how it is resampled."""

    name: str  # published attribute prefix, e.g. "h1_PT_hd4"
    level: int  # 1..5, the level its input lives at
    resample: str  # "pool", "none" or "up"
    factor: int  # pooling kernel/stride, or up-sampling factor (1 for "none")


def decoder_branches(stage: int, n_levels: int = len(ENCODER_WIDTHS)) -> List[Branch]:
    """The five branches feeding decoder stage ``stage``, in the published concatenation order."""
    branches = []
    for level in range(1, n_levels + 1):
        if level < stage:
            branches.append(Branch(f"h{level}_PT_hd{stage}", level, "pool", 2 ** (stage - level)))
        elif level == stage:
            branches.append(Branch(f"h{level}_Cat_hd{stage}", level, "none", 1))
        else:
            branches.append(Branch(f"hd{level}_UT_hd{stage}", level, "up", 2 ** (level - stage)))
    return branches


def decoder_plan(n_levels: int = len(ENCODER_WIDTHS)) -> Tuple[Tuple[int, Tuple[Tuple[str, int, str], ...]], ...]:
    """``((stage, ((branch name, level, resample), ...)), ...)`` for stages 4..1: what ``decode`` walks
    (plain tuples, which MindSpore's GRAPH mode unrolls)."""
    return tuple((stage, tuple((b.name, b.level, b.resample) for b in decoder_branches(stage, n_levels)))
                 for stage in range(n_levels - 1, 0, -1))


def up_branches(n_levels: int = len(ENCODER_WIDTHS)) -> Tuple[Tuple[int, int], ...]:
    """``(stage, level)`` of every up-sampling branch, in the order ``decode`` meets them (stages 4..1)."""
    return tuple((stage, level) for stage in range(n_levels - 1, 0, -1) for level in range(stage + 1, n_levels + 1))


def up_branch_index(stage: int, level: int, n_levels: int = len(ENCODER_WIDTHS)) -> int:
    """Where branch ``(stage, level)`` stands in :func:`up_branches` (arithmetic, so GRAPH mode folds it)."""
    return (n_levels - 1 - stage) * (n_levels - stage) // 2 + level - stage - 1


class FeatureInfo(NamedTuple):
    """One feature map of ``encode`` or ``decode`` (as timm's ``feature_info``)."""

    name: str  # "h1".."h5" (encode) or "hd1".."hd5" (decode)
    channels: int
    reduction: int  # input size / feature size


class FeatureMaps(NamedTuple):
    """What ``encode`` and ``decode`` return, in order."""

    encode: Tuple[FeatureInfo, ...]
    decode: Tuple[FeatureInfo, ...]


def feature_maps(widths: Sequence[int] = ENCODER_WIDTHS) -> FeatureMaps:
    n_levels = len(widths)
    encode = tuple(FeatureInfo(f"h{level}", widths[level - 1], 2 ** (level - 1)) for level in range(1, n_levels + 1))
    decode = tuple(FeatureInfo(f"hd{level}", FUSED_CHANNELS if level < n_levels else widths[-1], 2 ** (level - 1))
                   for level in range(1, n_levels + 1))  # hd5 is the encoder's bottom feature h5
    return FeatureMaps(encode, decode)


class UNet3PlusBase(nn.Cell):
    """The shared forward walk. A subclass sets, under the published names:

    * ``in_channels``, ``n_classes``;
    * ``conv1`` .. ``conv5`` (encoder levels), ``pool2x`` (2x2 max-pool), ``relu``;
    * ``_decoder_plan = decoder_plan()``; per branch ``<name>`` (its max-pool, "pool" branches only),
      ``<name>_conv`` and ``<name>_bn``; per stage ``conv{stage}d_1`` and ``bn{stage}d_1``;

    and implements :meth:`_upsample_and_convolve`, the one step the two forms compute differently.
    """

    feature_info: FeatureMaps = feature_maps()
    # What the weights were trained on (``hub.model_config.ModelConfig``: classes, input preparation). Set by
    # ``create_network`` and the trainer; the folded copy and every backend keep it, so that predict, evaluate
    # and export prepare inputs as training did.
    model_config: Optional[Any] = None

    def _upsample_and_convolve(self, name: str, x: Tensor, size: Tuple[int, int]) -> Tensor:
        """Up-sampling branch ``name``: bilinear (align-corners) resize of ``x`` to ``size``, then the
        branch's 3x3 convolution ``<name>_conv`` (its BatchNorm follows in ``decode``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _upsample_and_convolve")

    def encode(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Encoder features ``(h1, h2, h3, h4, h5)``, full resolution down to 1/16 (``feature_info.encode``)."""
        self._check_input(x)
        features = [self.conv1(x)]
        for level in range(2, len(ENCODER_WIDTHS) + 1):
            features.append(getattr(self, f"conv{level}")(self.pool2x(features[-1])))
        return tuple(features)

    def decode(self, encoder_features: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Decoder features ``(hd1, hd2, hd3, hd4, hd5)`` (``feature_info.decode``) from the one tuple
        ``encode`` returns; hd5 is the encoder's bottom feature h5."""
        self._check_encoder_features(encoder_features)
        return self._decode(encoder_features)

    def _decode(self, encoder_features: Sequence[Tensor], windows: Optional[Sequence[Any]] = None) -> Tuple[Tensor, ...]:
        # at_level[l-1] holds h_l until stage l is decoded, then hd_l: exactly what later stages read.
        # ``windows`` (crops of a larger image, see fusion.PositionedUNet3Plus): one per up_branches entry.
        at_level = list(encoder_features)
        for stage, branches in self._decoder_plan:
            target_size = (at_level[stage - 1].shape[2], at_level[stage - 1].shape[3])
            outputs = []
            for name, level, resample in branches:
                x = at_level[level - 1]
                if resample == "up" and windows is not None:
                    x = self._upsample_and_convolve(name, x, target_size, windows[up_branch_index(stage, level)])
                elif resample == "up":
                    x = self._upsample_and_convolve(name, x, target_size)
                else:
                    if resample == "pool":
                        x = getattr(self, name)(x)
                    x = getattr(self, name + "_conv")(x)
                outputs.append(getattr(self, name + "_bn")(x))
            # One ReLU over the concatenation equals one per branch, and training keeps one tensor
            # for its backward pass instead of five branch outputs plus their concatenation.
            fused = getattr(self, f"conv{stage}d_1")(self.relu(ops.cat(outputs, 1)))
            at_level[stage - 1] = self.relu(getattr(self, f"bn{stage}d_1")(fused))
        return tuple(at_level)

    # -- validation ---------------------------------------------------------------------------------
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"UNet3Plus expects a 4-D tensor (N, {self.in_channels}, H, W), got a {x.ndim}-D tensor "
                f"of shape {x.shape}; add the batch axis, e.g. x[None] or x.expand_dims(0)."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet3Plus was built for {self.in_channels} input channel(s) but got {x.shape[1]} "
                f"(input shape {x.shape}); build it with in_channels={x.shape[1]} or convert the image."
            )
        height, width = x.shape[2], x.shape[3]
        if height % SIZE_MULTIPLE != 0 or width % SIZE_MULTIPLE != 0:
            raise ValueError(
                f"UNet3Plus needs H and W divisible by {SIZE_MULTIPLE}, got H={height}, W={width}; "
                f"nearest valid sizes: H in {nearest_multiples(height, SIZE_MULTIPLE)}, "
                f"W in {nearest_multiples(width, SIZE_MULTIPLE)} "
                f"(pad or resize the image, or use unet3plus.predict, which pads for you)."
            )

    def _check_encoder_features(self, features: Sequence[Tensor]) -> None:
        """``decode``'s input must be what ``encode`` returns: 5 maps of the channels and sizes it lists."""
        expected = self.feature_info.encode
        if not isinstance(features, (tuple, list)) or len(features) != len(expected):
            got = f"{len(features)} item(s)" if isinstance(features, (tuple, list)) else type(features).__name__
            raise ValueError(f"decode takes one tuple of the {len(expected)} encoder features (h1..h5), got {got}; "
                             "pass what encode returns: net.decode(net.encode(x))")
        if any(getattr(feature, "ndim", None) != 4 for feature in features):
            raise ValueError("decode's encoder features must be 4-D tensors N x C x H x W; pass what encode returns")
        batch, height, width = features[0].shape[0], features[0].shape[2], features[0].shape[3]
        for info, feature in zip(expected, features):
            wanted = (batch, info.channels, height // info.reduction, width // info.reduction)
            if tuple(feature.shape) != wanted:
                raise ValueError(f"decode's encoder feature {info.name} has shape {tuple(feature.shape)}, expected "
                                 f"{wanted} (feature_info.encode); pass what encode returns")
