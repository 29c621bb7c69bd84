"""Opt-in variants: deep supervision, the classification-guided module, encoder freezing."""
from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from unet3plus import UNet3Plus
from unet3plus.networks import ABSENT_LOGIT, gate_logits

PUBLISHED_PARAMETER_COUNT = 171


def tensor(shape, seed=0):
    return ms.Tensor(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def names(net) -> set:
    return {p.name for p in net.get_parameters()}


def test_default_network_has_only_published_parameters_and_returns_logits_in_training():
    net = UNet3Plus(in_channels=1, n_classes=2)
    assert len(names(net)) == PUBLISHED_PARAMETER_COUNT
    assert net.train_output_names == ("logits",)
    net.set_train(True)
    out = net(tensor((2, 1, 32, 32)))
    assert isinstance(out, ms.Tensor) and out.shape == (2, 2, 32, 32)


def test_variant_parameters_have_new_names_and_published_ones_are_untouched():
    plain = names(UNet3Plus())
    both = names(UNet3Plus(deep_supervision=True, cgm=True))
    extra = both - plain
    assert plain <= both
    assert extra == {f"ds_head{k}.{p}" for k in range(2, 6) for p in ("weight", "bias")} | {
        "cgm.conv.weight", "cgm.conv.bias"}


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_training_outputs_with_both_variants(mode, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    net = UNet3Plus(in_channels=1, n_classes=3, deep_supervision=True, cgm=True)
    net.set_train(True)
    outputs = net(tensor((2, 1, 32, 32)))
    assert len(outputs) == len(net.train_output_names) == 6
    assert net.train_output_names[-1] == "class_logits"
    for side in outputs[:5]:
        assert side.shape == (2, 3, 32, 32)  # hd2..hd5 upsampled to full size
    assert outputs[5].shape == (2, 3)
    net.set_train(False)
    assert net(tensor((2, 1, 32, 32))).shape == (2, 3, 32, 32)


def test_deep_supervision_eval_logits_equal_the_shared_network(golden_checkpoint, golden_io):
    entries = ms.load_checkpoint(str(golden_checkpoint))
    shared = {k[len("network."):]: v for k, v in entries.items() if k.startswith("network.")}
    net = UNet3Plus(deep_supervision=True)
    not_loaded, _ = ms.load_param_into_net(net, shared)
    assert sorted(not_loaded) == sorted(f"ds_head{k}.{p}" for k in range(2, 6) for p in ("weight", "bias"))
    net.set_train(False)
    logits = net(ms.Tensor(golden_io["input"])).asnumpy()
    np.testing.assert_allclose(logits, golden_io["logits"], rtol=0, atol=1e-4)


def set_cgm_bias(net, value):
    net.cgm.conv.weight.set_data(ms.Tensor(np.zeros(net.cgm.conv.weight.shape, np.float32)))
    net.cgm.conv.bias.set_data(ms.Tensor(np.full(net.cgm.conv.bias.shape, value, np.float32)))


def test_cgm_gates_probabilities_to_exactly_zero_when_class_absent():
    net = UNet3Plus(in_channels=1, n_classes=1, cgm=True)
    net.set_train(False)
    x = tensor((2, 1, 32, 32))
    set_cgm_bias(net, 20.0)  # "present": the gate passes the logits through unchanged
    passed = net(x).asnumpy()
    plain = net.outconv1(net.decode(net.encode(x))[0]).asnumpy()
    np.testing.assert_array_equal(passed, plain)
    set_cgm_bias(net, -20.0)  # "absent": probability must be 0, not sigmoid(0) = 0.5
    gated = net(x)
    assert np.all(gated.asnumpy() == ABSENT_LOGIT)
    assert np.all(ms.ops.sigmoid(gated).asnumpy() == 0.0)


def test_cgm_gate_is_per_class_and_keeps_background_in_multiclass():
    logits = tensor((1, 3, 4, 4))
    class_logits = ms.Tensor(np.array([[-5.0, 5.0, -5.0]], np.float32))  # class 2 absent
    gated = gate_logits(logits, class_logits).asnumpy()
    np.testing.assert_array_equal(gated[:, :2], logits.asnumpy()[:, :2])  # background never gated
    assert np.all(gated[:, 2] == ABSENT_LOGIT)
    assert np.all(ms.ops.softmax(ms.Tensor(gated), axis=1).asnumpy()[:, 2] == 0)  # absent class: probability 0
    binary = gate_logits(logits[:, :1], ms.Tensor(np.array([[-5.0]], np.float32)))
    assert np.all(ms.ops.sigmoid(binary).asnumpy() == 0)


def encoder_state(net):
    return {p.name: p.asnumpy().copy() for cell in net.encoder_cells() for p in cell.get_parameters()}


def test_freeze_encoder_stops_gradients_and_batchnorm_statistics():
    net = UNet3Plus(in_channels=1, n_classes=1)
    net.freeze_encoder()
    assert net.encoder_frozen
    trainable = {p.name for p in net.trainable_params()}
    assert not any(name.startswith(("conv1.", "conv2.", "conv3.", "conv4.", "conv5.")) for name in trainable)
    assert "outconv1.weight" in trainable and "conv1d_1.weight" in trainable
    before = encoder_state(net)
    decoder_mean_before = net.bn1d_1.moving_mean.asnumpy().copy()

    loss = nn.WithLossCell(net, nn.BCEWithLogitsLoss())
    step = nn.TrainOneStepCell(loss, nn.Adam(net.trainable_params(), learning_rate=1e-2))
    step.set_train(True)
    x = tensor((2, 1, 32, 32))
    y = ms.Tensor((np.random.default_rng(1).random((2, 1, 32, 32)) > 0.5).astype(np.float32))
    step(x, y)
    after = encoder_state(net)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)  # weights AND running stats
    assert not np.array_equal(net.bn1d_1.moving_mean.asnumpy(), decoder_mean_before)

    net.unfreeze_encoder()
    assert not net.encoder_frozen
    assert {p.name for p in net.trainable_params()} == {
        p.name for p in UNet3Plus(in_channels=1).trainable_params()}
    step = nn.TrainOneStepCell(loss, nn.Adam(net.trainable_params(), learning_rate=1e-2))
    step.set_train(True)
    step(x, y)
    assert not np.array_equal(net.conv1.conv[1].moving_mean.asnumpy(), after["conv1.conv.1.moving_mean"])
    assert not np.array_equal(net.conv1.conv[0].weight.asnumpy(), after["conv1.conv.0.weight"])
