"""Export: ONNX (run in ONNX Runtime) and MINDIR match MindSpore; predict --backend onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus import create_network, predict
from unet3plus.cli import main
from unet3plus.errors import InputError
from unet3plus.export import compare_onnx, export_network
from unet3plus.runtime import OnnxRuntimeBackend

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def golden_net(golden_checkpoint):
    return create_network(checkpoint=golden_checkpoint)


@pytest.fixture(scope="module")
def golden_onnx(golden_net, tmp_path_factory):
    return export_network(golden_net, tmp_path_factory.mktemp("onnx") / "golden.onnx", "onnx", (2, 3, 64, 96))


@pytest.mark.compat
def test_onnx_in_onnxruntime_matches_mindspore_and_the_golden_logits(golden_net, golden_onnx, golden_io):
    difference, onnx_logits = compare_onnx(golden_net, golden_onnx, np.concatenate([golden_io["input"]] * 2))
    print(f"ONNX Runtime vs MindSpore max abs difference: {difference:.3g}")
    assert difference <= 1e-4
    assert np.abs(onnx_logits - np.concatenate([golden_io["logits"]] * 2)).max() <= 1e-4
    assert OnnxRuntimeBackend(golden_onnx).fixed_shape == (2, 3, 64, 96)


def test_predict_with_the_onnxruntime_backend_matches_mindspore(golden_net, golden_onnx):
    volume = np.random.default_rng(0).integers(-300, 400, size=(3, 64, 96)).astype(np.float32)
    with_onnx = predict(str(golden_onnx), volume, probabilities=True)  # fixed batch of 2: the last batch is padded
    with_mindspore = predict(golden_net, volume, batch_size=2, mode="pynative", probabilities=True)
    np.testing.assert_allclose(with_onnx.probabilities, with_mindspore.probabilities, atol=1e-4)
    smaller = predict(str(golden_onnx), volume[:, :40, :50])  # padded up to the exported 64 x 96
    assert smaller.mask.shape == (3, 40, 50)
    with pytest.raises(InputError, match="larger than the 64 x 96"):
        predict(str(golden_onnx), np.zeros((3, 80, 64), np.float32))


@pytest.mark.compat
def test_mindir_export_loads_and_matches(golden_net, golden_io, tmp_path):
    import mindspore as ms

    path = export_network(golden_net, tmp_path / "net.mindir", "mindir", (1, 3, 64, 96))
    graph = ms.nn.GraphCell(ms.load(str(path)))
    logits = graph(ms.Tensor(golden_io["input"])).asnumpy()
    assert np.abs(logits - golden_io["logits"]).max() <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.mindir"]  # no temporary left behind
    with pytest.raises(InputError, match="already exists"):
        export_network(golden_net, path, "mindir", (1, 3, 64, 96))
    with pytest.raises(InputError, match="multiples of 16"):
        export_network(golden_net, tmp_path / "x.onnx", "onnx", (1, 3, 50, 64))


@pytest.mark.compat
def test_cli_export_and_predict_with_onnxruntime(golden_checkpoint, tmp_path, capsys):
    model = tmp_path / "model.onnx"
    assert main(["export", "--format", "onnx", "--out", str(model), "--checkpoint", str(golden_checkpoint),
                 "--size", "32", "32", "--verify"]) == 0
    printed = capsys.readouterr().out
    difference = float(printed.rsplit("difference", 1)[1])
    assert difference <= 1e-4
    np.save(tmp_path / "v.npy", np.zeros((3, 32, 32), np.float32))
    assert main(["predict", str(tmp_path / "v.npy"), "--out", str(tmp_path / "out"), "--backend", "onnxruntime",
                 "--onnx-model", str(model), "--no-progress"]) == 0
    assert (tmp_path / "out" / "v_mask.npy").is_file()
    assert main(["predict", str(tmp_path / "v.npy"), "--out", str(tmp_path / "out2"), "--backend",
                 "onnxruntime"]) == 2
