"""The network matches the published checkpoint's parameters and the reference logits exactly."""
from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest

from unet3plus import UNet3Plus
from unet3plus.networks import decoder_branches


def network_parameters(net) -> set:
    return {(p.name, tuple(p.shape), str(p.dtype)) for p in net.get_parameters()}


def test_parameters_equal_manifest_without_prefix(manifest):
    expected = {(name[len("network."):], shape, dtype) for name, shape, dtype, _ in manifest
                if name.startswith("network.")}
    assert len(expected) == 171
    assert network_parameters(UNet3Plus()) == expected


def test_parameters_equal_manifest_with_training_step_prefix(manifest):
    expected = {(name, shape, dtype) for name, shape, dtype, role in manifest if role != "optimizer"
                and not name.startswith(("moment1.", "moment2."))}
    prefixed = {("network." + name, shape, dtype) for name, shape, dtype in network_parameters(UNet3Plus())}
    assert prefixed == expected


def test_trainable_split_matches_manifest(manifest):
    net = UNet3Plus()
    trainable = {p.name for p in net.trainable_params()}
    expected = {name[len("network."):] for name, _, _, role in manifest if role == "weight"}
    assert trainable == expected  # 103 weights; the 68 BatchNorm statistics are buffers


def test_decoder_branch_names_follow_published_scheme():
    assert [b.name for b in decoder_branches(4)] == [
        "h1_PT_hd4", "h2_PT_hd4", "h3_PT_hd4", "h4_Cat_hd4", "hd5_UT_hd4"]
    assert [b.name for b in decoder_branches(1)] == [
        "h1_Cat_hd1", "hd2_UT_hd1", "hd3_UT_hd1", "hd4_UT_hd1", "hd5_UT_hd1"]
    assert [b.factor for b in decoder_branches(2)] == [2, 1, 2, 4, 8]


def load_golden(net, checkpoint_path) -> None:
    entries = ms.load_checkpoint(str(checkpoint_path))
    network_entries = {k[len("network."):]: v for k, v in entries.items() if k.startswith("network.")}
    assert len(network_entries) == 171
    not_loaded, unused = ms.load_param_into_net(net, network_entries, strict_load=True)
    assert not_loaded == [] and unused == []


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_golden_logits(mode, golden_checkpoint, golden_io, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    net = UNet3Plus()
    load_golden(net, golden_checkpoint)
    net.set_train(False)
    logits = net(ms.Tensor(golden_io["input"])).asnumpy()
    assert logits.shape == golden_io["logits"].shape == (1, 1, 64, 96)
    np.testing.assert_allclose(logits, golden_io["logits"], rtol=0, atol=1e-4)


def test_golden_under_jit_and_any_batch_size(golden_checkpoint, golden_io):
    net = UNet3Plus()
    load_golden(net, golden_checkpoint)
    net.set_train(False)

    @ms.jit
    def forward(x):
        return net(x)

    pair = forward(ms.Tensor(np.concatenate([golden_io["input"]] * 2))).asnumpy()  # batch 2 from a batch-1 golden
    np.testing.assert_allclose(pair, np.concatenate([golden_io["logits"]] * 2), rtol=0, atol=1e-4)


def test_output_shape_for_classes_and_channels():
    net = UNet3Plus(in_channels=1, n_classes=3)
    net.set_train(False)
    out = net(ms.Tensor(np.random.default_rng(0).normal(size=(3, 1, 32, 48)).astype(np.float32)))
    assert out.shape == (3, 3, 32, 48)


def test_encoder_and_decoder_features_shapes():
    net = UNet3Plus()
    x = ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))
    encoder = net.encode(x)
    assert [tuple(f.shape) for f in encoder] == [
        (1, 16, 32, 32), (1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2)]
    decoder = net.decode(encoder)
    assert [tuple(f.shape) for f in decoder] == [
        (1, 80, 32, 32), (1, 80, 16, 16), (1, 80, 8, 8), (1, 80, 4, 4), (1, 256, 2, 2)]
    for infos, features in ((net.feature_info.encode, encoder), (net.feature_info.decode, decoder)):
        assert [(info.channels, 32 // info.reduction) for info in infos] == [f.shape[1:3] for f in features]
    assert [info.name for info in net.feature_info.decode] == ["hd1", "hd2", "hd3", "hd4", "hd5"]


@pytest.mark.parametrize("bad_input, expected", [
    (lambda h: h[0], r"one tuple of the 5 encoder features \(h1..h5\), got Tensor"),
    (lambda h: h[:4], "got 4 item"),
    (lambda h: (h[0], h[1], h[2], h[3], h[3]), r"h5 has shape \(1, 128, 4, 4\), expected \(1, 256, 2, 2\)"),
    (lambda h: tuple(f[:, :, :2] for f in h[:1]) + h[1:], "h2 has shape"),
])
def test_decode_checks_it_gets_what_encode_returns(bad_input, expected):
    net = UNet3Plus()
    encoder = net.encode(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32)))
    with pytest.raises(ValueError, match=expected):
        net.decode(bad_input(encoder))


@pytest.mark.parametrize("mode", ["pynative", "graph"])
@pytest.mark.parametrize(
    "shape, expected",
    [
        ((3, 32, 32), r"4-D tensor \(N, 3, H, W\), got a 3-D tensor"),
        ((1, 1, 32, 32), r"built for 3 input channel\(s\) but got 1.*in_channels=1"),
        ((1, 3, 100, 64), r"divisible by 16, got H=100, W=64; nearest valid sizes: H in \[96, 112\]"),
        ((1, 3, 64, 8), r"W in \[16\]"),
    ],
)
def test_bad_input_raises_clear_value_error(mode, shape, expected, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    net = UNet3Plus()
    with pytest.raises(ValueError, match=expected):
        net(ms.Tensor(np.zeros(shape, np.float32)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        UNet3Plus(n_classes=0)
