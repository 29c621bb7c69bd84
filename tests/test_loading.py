"""load_checkpoint: both published formats, strict failures that list every problem, transfer reports."""
from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest

import unet3plus
from unet3plus import LoadReport, UNet3Plus, load_checkpoint
from unet3plus.hub import CheckpointError, adapt_first_conv
from unet3plus.hub.registry import FIRST_CONV_WEIGHT, HEAD_WEIGHT, PUBLISHED_PARAMETER_NAMES
from unet3plus.networks.blocks import conv3x3


@pytest.fixture(scope="module")
def golden_entries(golden_checkpoint) -> dict:
    """The golden published-format checkpoint as {name: array}."""
    return {name: value.asnumpy() for name, value in ms.load_checkpoint(str(golden_checkpoint)).items()}


@pytest.fixture(scope="module")
def network_only_entries(golden_entries) -> dict:
    return {name[len("network."):]: value for name, value in golden_entries.items() if name.startswith("network.")}


def parameters(net) -> dict:
    return {p.name: p.asnumpy() for p in net.get_parameters()}


def logits(net, x: np.ndarray) -> np.ndarray:
    net.set_train(False)
    return net(ms.Tensor(x)).asnumpy()


def test_published_names_are_the_manifest_names(manifest):
    expected = {name[len("network."):] for name, *_ in manifest if name.startswith("network.")}
    assert PUBLISHED_PARAMETER_NAMES == expected and len(expected) == 171


def test_published_training_step_format_loads_strictly_and_reproduces_golden_logits(golden_checkpoint, golden_io):
    net = UNet3Plus()
    report = load_checkpoint(net, golden_checkpoint)
    assert isinstance(report, LoadReport)
    assert report.checkpoint_format == "training-step"
    assert sorted(report.loaded) == sorted(PUBLISHED_PARAMETER_NAMES)
    assert report.complete and not report.adapted and not report.newly_initialised
    assert len(report.skipped) == 210  # Adam moments and step state
    assert all("optimizer" in why for why in report.skipped.values())
    np.testing.assert_allclose(logits(net, golden_io["input"]), golden_io["logits"], atol=1e-4)


def test_network_only_format_from_file_and_from_dict(tmp_path, network_only_entries, golden_io):
    path = tmp_path / "network_only.ckpt"
    ms.save_checkpoint([{"name": name, "data": ms.Tensor(value)} for name, value in network_only_entries.items()],
                       str(path))
    for source in (path, {name: ms.Tensor(value) for name, value in network_only_entries.items()}):
        net = UNet3Plus()
        report = load_checkpoint(net, source)
        assert report.checkpoint_format == "network-only"
        assert len(report.loaded) == 171 and not report.skipped and report.complete
        np.testing.assert_allclose(logits(net, golden_io["input"]), golden_io["logits"], atol=1e-4)


def test_strict_failure_lists_missing_unexpected_and_mismatched_and_changes_nothing(network_only_entries):
    entries = dict(network_only_entries)
    del entries["bn2d_1.moving_mean"]
    del entries["conv3.conv.0.weight"]
    entries["not_a_layer.weight"] = np.zeros(3, np.float32)
    entries["h1_PT_hd4_conv.weight"] = np.zeros((16, 16, 5, 5), np.float32)
    net = UNet3Plus()
    before = parameters(net)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(net, entries)
    message = str(caught.value)
    for fragment in ("2 missing", "bn2d_1.moving_mean", "conv3.conv.0.weight", "1 unexpected", "not_a_layer.weight",
                     "1 shape-mismatched", "h1_PT_hd4_conv.weight: checkpoint (16, 16, 5, 5) vs network (16, 16, 3, 3)",
                     "strict=False"):
        assert fragment in message, fragment
    assert isinstance(caught.value, ValueError)
    after = parameters(net)
    assert all(np.array_equal(before[name], after[name]) for name in before)  # nothing half-loaded


def test_non_strict_loads_what_matches_and_reports_the_rest(network_only_entries):
    entries = dict(network_only_entries)
    del entries["bn2d_1.moving_mean"]
    entries["not_a_layer.weight"] = np.zeros(3, np.float32)
    net = UNet3Plus()
    report = load_checkpoint(net, entries, strict=False)
    assert len(report.loaded) == 170
    assert report.newly_initialised == {"bn2d_1.moving_mean": "missing from the checkpoint"}
    assert report.skipped == {"not_a_layer.weight": "not a parameter of this network"}
    np.testing.assert_array_equal(parameters(net)["conv3.conv.0.weight"], entries["conv3.conv.0.weight"])


def test_unreadable_checkpoint_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "garbage.ckpt"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a MindSpore checkpoint or it is damaged"):
        load_checkpoint(UNet3Plus(), bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(UNet3Plus(), tmp_path / "absent.ckpt")


def test_transfer_to_three_classes_keeps_all_but_the_head(golden_checkpoint, network_only_entries, caplog):
    net = UNet3Plus(n_classes=3)
    fresh_head = parameters(net)[HEAD_WEIGHT]
    with pytest.raises(CheckpointError, match=r"outconv1\.weight: checkpoint \(1, 80, 3, 3\).*transfer=True"):
        load_checkpoint(net, golden_checkpoint)  # a new head is a transfer: only when asked for
    with caplog.at_level("WARNING", logger="unet3plus.hub.loading"):
        report = load_checkpoint(net, golden_checkpoint, transfer=True)  # strict: the asked-for transfer is fine
    assert len(report.loaded) == 170 and HEAD_WEIGHT not in report.loaded
    assert list(report.newly_initialised) == [HEAD_WEIGHT] and "3 class(es)" in report.newly_initialised[HEAD_WEIGHT]
    assert report.skipped["network." + HEAD_WEIGHT] == "classifier replaced (different n_classes)"
    assert any(HEAD_WEIGHT in record.getMessage() and "newly initialised" in record.getMessage()
               for record in caplog.records)  # never silent
    assert not report.complete and "newly initialised outconv1.weight" in report.summary()
    loaded = parameters(net)
    assert loaded[HEAD_WEIGHT].shape == (3, 80, 3, 3)
    np.testing.assert_array_equal(loaded[HEAD_WEIGHT], fresh_head)
    np.testing.assert_array_equal(loaded["bn1d_1.gamma"], network_only_entries["bn1d_1.gamma"])


@pytest.mark.parametrize("in_channels", [1, 4])
def test_transfer_to_other_input_channels_adapts_the_first_conv(golden_checkpoint, network_only_entries, in_channels):
    net = UNet3Plus(in_channels=in_channels)
    with pytest.raises(CheckpointError, match=FIRST_CONV_WEIGHT):
        load_checkpoint(net, golden_checkpoint)
    report = load_checkpoint(net, golden_checkpoint, transfer=True)
    assert list(report.adapted) == [FIRST_CONV_WEIGHT] and len(report.loaded) == 170
    rgb = network_only_entries[FIRST_CONV_WEIGHT]  # (16, 3, 3, 3)
    adapted = parameters(net)[FIRST_CONV_WEIGHT]
    assert adapted.shape == (16, in_channels, 3, 3)
    if in_channels == 1:
        np.testing.assert_allclose(adapted[:, 0], rgb[:, 0] + rgb[:, 1] + rgb[:, 2], rtol=1e-6)
        assert "summed over RGB" in report.adapted[FIRST_CONV_WEIGHT]
    else:
        for channel, source in enumerate([0, 1, 2, 0]):  # RGB repeated cyclically, scaled by 3/4
            np.testing.assert_allclose(adapted[:, channel], rgb[:, source] * 0.75, rtol=1e-6)
        assert "3/4" in report.adapted[FIRST_CONV_WEIGHT]


def test_adapted_first_conv_keeps_the_response_to_a_grey_image(golden_checkpoint):
    rgb_net, grey_net = UNet3Plus(), UNet3Plus(in_channels=1)
    load_checkpoint(rgb_net, golden_checkpoint)
    load_checkpoint(grey_net, golden_checkpoint, transfer=True)
    grey = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(logits(grey_net, grey), logits(rgb_net, np.repeat(grey, 3, axis=1)), atol=1e-4)


def test_adapt_first_conv_rejects_non_rgb_weights():
    with pytest.raises(ValueError, match="RGB"):
        adapt_first_conv(np.zeros((16, 2, 3, 3), np.float32), 1)


class UNet3PlusWithExtraHead(UNet3Plus):
    """A variant like the deep-supervision ones: the published network plus a parameter it never had."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.aux_head = conv3x3(80, self.n_classes)


def test_extra_variant_heads_are_newly_initialised_on_a_transfer(golden_checkpoint):
    net = UNet3PlusWithExtraHead()
    fresh = parameters(net)["aux_head.weight"]
    with pytest.raises(CheckpointError, match=r"1 missing .*aux_head\.weight"):
        load_checkpoint(net, golden_checkpoint)  # an exact load needs every parameter
    report = load_checkpoint(net, golden_checkpoint, transfer=True)  # strict
    assert len(report.loaded) == 171
    assert report.newly_initialised == {"aux_head.weight": "variant head the checkpoint lacks"}
    np.testing.assert_array_equal(parameters(net)["aux_head.weight"], fresh)


def test_a_missing_published_weight_is_still_an_error_in_a_variant(network_only_entries):
    entries = {name: value for name, value in network_only_entries.items() if name != "outconv1.weight"}
    with pytest.raises(CheckpointError, match=r"1 missing .*outconv1\.weight") as caught:
        load_checkpoint(UNet3PlusWithExtraHead(), entries, transfer=True)
    assert "aux_head" not in str(caught.value)


def test_public_api_is_reexported():
    for name in ("create_network", "load_checkpoint", "pretrained_checkpoint", "list_models", "optimize_for_inference",
                 "LoadReport"):
        assert name in unet3plus.__all__ and callable(getattr(unet3plus, name))
    assert callable(unet3plus.hub.download_checkpoint)  # the low-level download(url, sha256) lives in hub
