"""The inference-optimised network gives the golden logits; the trainable network is left alone.

The resize-first up-sampling variants the benchmarks compare against live in ``benchmarks/resize_modes.py``;
they are checked here too, so a benchmark never times a network that computes something else.
"""
from __future__ import annotations

import sys

import mindspore as ms
import numpy as np
import pytest

from conftest import REPO_ROOT
from unet3plus import UNet3Plus
from unet3plus.networks.blocks import resize_bilinear_align_corners
from unet3plus.networks.fusion import InferenceUNet3Plus, folded_conv, fuse_batchnorm, optimize_for_inference

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from resize_modes import UPSAMPLING_MODES, fuse_with_upsampling, resize_bilinear_two_tap  # noqa: E402


def golden_network(checkpoint_path) -> UNet3Plus:
    entries = ms.load_checkpoint(str(checkpoint_path))
    net = UNet3Plus()
    not_loaded, unused = ms.load_param_into_net(
        net, {k[len("network."):]: v for k, v in entries.items() if k.startswith("network.")}, strict_load=True)
    assert not_loaded == [] and unused == []
    net.set_train(False)
    return net


@pytest.mark.parametrize("upsampling", UPSAMPLING_MODES)
def test_fused_network_gives_golden_logits(upsampling, golden_checkpoint, golden_io):
    fused = fuse_with_upsampling(golden_network(golden_checkpoint), upsampling)
    assert not any("gamma" in p.name or "moving" in p.name for p in fused.get_parameters())  # BN really gone
    logits = fused(ms.Tensor(golden_io["input"])).asnumpy()
    np.testing.assert_allclose(logits, golden_io["logits"], rtol=0, atol=1e-4)


def test_optimize_for_inference_in_graph_mode(golden_checkpoint, golden_io, graph_mode):
    optimized = optimize_for_inference(golden_network(golden_checkpoint))
    assert isinstance(optimized, InferenceUNet3Plus)
    logits = optimized(ms.Tensor(golden_io["input"])).asnumpy()
    np.testing.assert_allclose(logits, golden_io["logits"], rtol=0, atol=1e-4)


def test_folding_uses_running_statistics_not_batch_statistics():
    """A BN with non-trivial statistics: the folded conv equals conv -> BN(eval) exactly (to float error)."""
    rng = np.random.default_rng(0)
    conv = ms.nn.Conv2d(4, 6, 3, pad_mode="pad", padding=1)
    bn = ms.nn.BatchNorm2d(6)
    for parameter, value in ((bn.gamma, rng.uniform(0.5, 2, 6)), (bn.beta, rng.normal(size=6)),
                             (bn.moving_mean, rng.normal(size=6)), (bn.moving_variance, rng.uniform(0.1, 3, 6))):
        parameter.set_data(ms.Tensor(value.astype(np.float32)))
    bn.set_train(False)
    x = ms.Tensor(rng.normal(size=(2, 4, 8, 8)).astype(np.float32))
    np.testing.assert_allclose(folded_conv(conv, bn)(x).asnumpy(), bn(conv(x)).asnumpy(), atol=1e-5)


def test_two_tap_resize_equals_matrix_resize():
    x = ms.Tensor(np.random.default_rng(1).normal(size=(1, 3, 4, 8)).astype(np.float32))
    for size in ((32, 64), (4, 8), (7, 13)):
        np.testing.assert_allclose(resize_bilinear_two_tap(x, size).asnumpy(),
                                   resize_bilinear_align_corners(x, size).asnumpy(), atol=1e-5)


def test_source_network_untouched_and_optimized_network_is_eval_only():
    net = UNet3Plus().set_train(True)
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    optimized = optimize_for_inference(net)
    optimized.conv1.cell_list[0].weight.set_data(ms.Tensor(np.zeros((16, 3, 3, 3), np.float32)))
    assert all(np.array_equal(before[p.name], p.asnumpy()) for p in net.get_parameters())
    assert all(cell.training for _, cell in net.cells_and_names())  # no shared cell was switched to eval
    with pytest.raises(ValueError, match="train the original UNet3Plus"):
        optimized.set_train(True)
    with pytest.raises(TypeError, match="UNet3Plus"):
        fuse_batchnorm(ms.nn.Dense(2, 2))


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_optimized_network_rejects_bad_shapes_like_the_original(mode, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    optimized = optimize_for_inference(UNet3Plus())
    with pytest.raises(ValueError, match="divisible by 16"):
        optimized(ms.Tensor(np.zeros((1, 3, 40, 48), np.float32)))


def test_deep_supervision_network_optimizes_to_its_eval_logits_and_cgm_is_refused():
    net = UNet3Plus(deep_supervision=True)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(2).normal(size=(1, 3, 32, 32)).astype(np.float32))
    np.testing.assert_allclose(optimize_for_inference(net)(x).asnumpy(), net(x).asnumpy(), atol=1e-4)
    with pytest.raises(ValueError, match="cgm"):
        optimize_for_inference(UNet3Plus(cgm=True))


def test_optimized_network_round_trips_through_mindir(tmp_path):
    net = optimize_for_inference(UNet3Plus())
    x = ms.Tensor(np.random.default_rng(3).normal(size=(1, 3, 32, 32)).astype(np.float32))
    ms.export(net, x, file_name=str(tmp_path / "optimized"), file_format="MINDIR")
    loaded = ms.nn.GraphCell(ms.load(str(tmp_path / "optimized.mindir")))
    np.testing.assert_allclose(loaded(x).asnumpy(), net(x).asnumpy(), atol=1e-5)


def test_optimized_network_exports_to_onnx_and_runs_in_onnxruntime(tmp_path):
    """The folded up-sampling branches carry a bias; their export must load and match in onnxruntime."""
    pytest.importorskip("onnxruntime")
    from unet3plus.export import compare_onnx, export_network

    net = optimize_for_inference(UNet3Plus())
    path = export_network(net, tmp_path / "optimized.onnx", "onnx", (1, 3, 32, 32))
    batch = np.random.default_rng(4).normal(size=(1, 3, 32, 32)).astype(np.float32)
    difference, onnx_logits = compare_onnx(net, path, batch)
    assert onnx_logits.shape == (1, 1, 32, 32) and difference < 1e-4
