"""The exportable bilinear resize equals MindSpore's own align-corners bilinear interpolation."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import ops

from unet3plus.networks.blocks import interpolation_matrix, resize_bilinear_align_corners


@pytest.mark.parametrize("in_size, out_size", [(4, 8), (2, 32), (5, 7), (8, 8), (1, 4)])
def test_interpolation_matrix_rows_are_convex_weights(in_size, out_size):
    matrix = interpolation_matrix(in_size, out_size)
    assert matrix.shape == (out_size, in_size)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    assert matrix.min() >= 0
    assert matrix[0, 0] == 1.0 and matrix[-1, -1] == 1.0  # align_corners keeps the corners


@pytest.mark.parametrize("mode", ["pynative", "graph"])
@pytest.mark.parametrize("in_hw, out_hw", [((4, 4), (8, 8)), ((2, 2), (32, 32)), ((4, 8), (16, 64))])
def test_matches_ops_interpolate(mode, in_hw, out_hw, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    x = ms.Tensor(np.random.default_rng(0).normal(size=(2, 5, *in_hw)).astype(np.float32))
    expected = ops.interpolate(x, size=out_hw, mode="bilinear", align_corners=True).asnumpy()

    class Resize(ms.nn.Cell):
        def construct(self, value):
            return resize_bilinear_align_corners(value, out_hw)

    np.testing.assert_allclose(Resize()(x).asnumpy(), expected, rtol=0, atol=1e-5)
