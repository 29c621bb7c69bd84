"""The lean 3x3 convolution: same forward and same gradients as MindSpore's own ``nn.Conv2d``."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

import unet3plus  # noqa: F401  (oneDNN default before the first convolution)
from unet3plus.networks.lean_conv import Conv3x3
from unet3plus.networks.resize import resize_bilinear_align_corners


def _pair(in_channels: int, out_channels: int, seed: int):
    """A lean and a stock convolution holding the same random weights."""
    lean = Conv3x3(in_channels, out_channels)
    stock = nn.Conv2d(in_channels, out_channels, 3, pad_mode="pad", padding=1)
    weight = np.random.default_rng(seed).standard_normal((out_channels, in_channels, 3, 3)).astype(np.float32)
    lean.weight.set_data(ms.Tensor(weight))
    stock.weight.set_data(ms.Tensor(weight))
    return lean, stock


def _gradients(conv: nn.Cell, x: np.ndarray, target: np.ndarray, graph: bool):
    """Input and weight gradients of a loss that weights every output element differently."""
    def loss(image):
        return (conv(image) * ms.Tensor(target)).sum()

    grad = ms.grad(loss, grad_position=0, weights=conv.trainable_params())
    if graph:
        grad = ms.jit(grad)
    dx, (dw,) = grad(ms.Tensor(x))
    return dx.asnumpy(), dw.asnumpy()


# Odd, non-square sizes and channel counts catch row wrap-around and tap-order mistakes.
@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 11, 3), (1, 3, 16, 16, 16), (3, 16, 9, 4, 1)])
def test_gradients_match_stock_convolution(shape, graph):
    batch, in_channels, height, width, out_channels = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((batch, in_channels, height, width)).astype(np.float32)
    target = rng.standard_normal((batch, out_channels, height, width)).astype(np.float32)
    lean, stock = _pair(in_channels, out_channels, seed=1)

    np.testing.assert_allclose(lean(ms.Tensor(x)).asnumpy(), stock(ms.Tensor(x)).asnumpy(), rtol=0, atol=1e-6)
    lean_dx, lean_dw = _gradients(lean, x, target, graph)
    stock_dx, stock_dw = _gradients(stock, x, target, graph)
    assert lean_dw.shape == stock_dw.shape == (out_channels, in_channels, 3, 3)
    np.testing.assert_allclose(lean_dx, stock_dx, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(lean_dw, stock_dw, rtol=1e-5, atol=1e-4)


def test_same_parameter_as_nn_conv2d():
    conv = Conv3x3(4, 8)
    assert isinstance(conv, nn.Conv2d)
    assert [p.name for p in conv.get_parameters()] == ["weight"]
    assert conv.weight.shape == (8, 4, 3, 3) and not conv.has_bias


@pytest.mark.compat
@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
def test_unet3plus_training_matches_stock_kernels(graph):
    """Two SGD steps of the whole network (lean convolutions and the fused up-sampling branches): the same
    losses and weight updates as with MindSpore's stock gradient kernels."""
    from unet3plus import UNet3Plus

    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 48)).astype(np.float32))
    y = ms.Tensor((np.random.default_rng(1).random((2, 1, 32, 48)) > 0.5).astype(np.float32))

    def train(lean_backward: bool):
        ms.set_seed(0)
        net = UNet3Plus(lean_backward=lean_backward)
        net.set_train()
        start = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.BCEWithLogitsLoss()),
                                   nn.SGD(net.trainable_params(), learning_rate=0.1))
        run = ms.jit(step.construct) if graph else step
        losses = [float(run(x, y).asnumpy()) for _ in range(2)]
        return losses, {p.name: p.asnumpy() - start[p.name] for p in net.trainable_params()}

    lean_losses, lean_updates = train(lean_backward=True)
    stock_losses, stock_updates = train(lean_backward=False)
    np.testing.assert_allclose(lean_losses, stock_losses, rtol=1e-5)
    assert lean_updates.keys() == stock_updates.keys()
    # The updates are compared relative to their size: float32 rounding differences, amplified by BatchNorm over
    # a few deep-layer values, differ by MindSpore release and CPU (largest per-tensor difference measured: 0.1%
    # on 2.10, 1.2% on 2.7.2 on an Intel Xeon, for a tiny BatchNorm update); a wrong gradient is off by O(1).
    def relative(a, b):
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))

    every = relative(np.concatenate([v.ravel() for v in lean_updates.values()]),
                     np.concatenate([v.ravel() for v in stock_updates.values()]))
    assert every < 1e-2, every
    moved = 0
    for name, update in stock_updates.items():
        assert np.linalg.norm(update) > 0, f"{name} did not move"
        assert relative(lean_updates[name], update) < 5e-2, (name, relative(lean_updates[name], update))
        moved += name.endswith("_conv.weight") and "UT" in name
    assert moved == 10  # the up-sampling branches' weights are among those compared


def test_eval_mode_gives_the_same_logits_with_lean_or_stock_gradients():
    """``lean_backward`` only chooses the training gradients; inference is the same either way."""
    from unet3plus import UNet3Plus

    net = UNet3Plus(lean_backward=True)
    x = ms.Tensor(np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32))
    net.set_train(False)
    eval_logits = net(x).asnumpy()
    ms.set_seed(0)
    stock = UNet3Plus(lean_backward=False)
    ms.load_param_into_net(stock, {p.name: p for p in net.get_parameters()})
    stock.set_train(False)
    np.testing.assert_allclose(eval_logits, stock(x).asnumpy(), rtol=0, atol=1e-5)


class _UpsampleThenConvolve(nn.Cell):
    """``conv(upsample(x))``: the lean fused branch, or (``size`` given) resize followed by a stock conv."""

    def __init__(self, conv: nn.Cell, size=None):
        super().__init__()
        self.conv, self.size = conv, size

    def construct(self, x):
        if self.size is None:
            return self.conv.upsample_and_convolve(x)
        return self.conv(resize_bilinear_align_corners(x, self.size))


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("shape,factor", [((2, 5, 3, 7, 4), 2), ((1, 6, 4, 4, 3), 4), ((3, 2, 2, 5, 1), 3)])
def test_upsampling_gradients_match_resize_then_stock_convolution(shape, factor, graph):
    """The up-sampling branch's backward works at low resolution; it must equal resize + ``nn.Conv2d``'s."""
    batch, in_channels, height, width, out_channels = shape
    rng = np.random.default_rng(sum(shape) + factor)
    x = rng.standard_normal((batch, in_channels, height, width)).astype(np.float32)
    target = rng.standard_normal((batch, out_channels, height * factor, width * factor)).astype(np.float32)
    _, stock = _pair(in_channels, out_channels, seed=2)
    lean = Conv3x3(in_channels, out_channels, upsample_factor=factor)
    lean.weight.set_data(stock.weight.value())
    lean_dx, lean_dw = _gradients(_UpsampleThenConvolve(lean), x, target, graph)
    stock_dx, stock_dw = _gradients(_UpsampleThenConvolve(stock, (height * factor, width * factor)), x, target, graph)
    assert lean_dx.shape == stock_dx.shape == x.shape
    assert lean_dw.shape == stock_dw.shape == (out_channels, in_channels, 3, 3)
    np.testing.assert_allclose(lean_dx, stock_dx, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(lean_dw, stock_dw, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
def test_one_pixel_wide_feature_maps(graph):
    """Every tap but the centre reads padding: the shifts must yield zeros, not fail on empty slices."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    target = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    lean, stock = _pair(3, 4, seed=3)
    for lean_gradient, stock_gradient in zip(_gradients(lean, x, target, graph), _gradients(stock, x, target, graph)):
        np.testing.assert_allclose(lean_gradient, stock_gradient, rtol=1e-5, atol=1e-5)
