"""int8 export: QDQ static quantization, its agreement report, calibration inputs, the missing-extra error."""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from unet3plus import create_network
from unet3plus.cli import main
from unet3plus.export.quantize import calibration_and_held_out, compare_models, mask_dice, padded_batches

pytest.importorskip("onnxruntime")

SIZE = ("--size", "32", "32")


def report_of(printed: str) -> dict:
    found = re.search(r"on (\d+) held-out slices \(calibrated on (\d+)\): max logit error (\S+), mean (\S+), "
                      r"mask Dice (\S+)", printed)
    assert found, printed
    held, calibrated, worst, mean, dice = found.groups()
    return {"held": int(held), "calibrated": int(calibrated), "max": float(worst.rstrip(",")),
            "mean": float(mean.rstrip(",")), "dice": float(dice)}


def test_int8_export_writes_a_qdq_model_and_reports_its_agreement(golden_checkpoint, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "int8.onnx"
    assert main(["export", "--format", "onnx", "--quantize", "int8", "--out", str(out), "--checkpoint",
                 str(golden_checkpoint), *SIZE, "--calibration-slices", "8"]) == 0
    report = report_of(capsys.readouterr().out)
    assert report["held"] == 8 and report["calibrated"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]  # no fp32 or temporary file left
    operators = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators

    # The report is what an independent look finds: int8 against MindSpore's own fp32 logits on the same
    # held-out slices (the preset's typical inputs, seeds the calibration never saw).
    import mindspore as ms

    from unet3plus.runtime import OnnxRuntimeBackend

    net = create_network(checkpoint=golden_checkpoint)
    _, held_out = calibration_and_held_out(net, (1, 3, 32, 32), n_calibration=8, n_held_out=8)
    int8 = np.concatenate([OnnxRuntimeBackend(out)(batch) for batch in padded_batches(held_out, (1, 3, 32, 32))])
    net.set_train(False)
    fp32 = net(ms.Tensor(held_out)).asnumpy()
    assert abs(float(np.abs(int8 - fp32).max()) - report["max"]) <= 1e-3
    assert 0 < report["max"] < 0.5 and report["mean"] < report["max"]  # int8 is not fp32, and not far from it
    assert mask_dice(fp32[:, 0] > 0, int8[:, 0] > 0) == pytest.approx(report["dice"], abs=1e-4)
    assert report["dice"] >= 0.9


def test_int8_calibrates_on_the_users_files_and_holds_the_last_one_out(golden_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    files = []
    for name, depth in (("a", 6), ("b", 5)):
        files.append(tmp_path / f"{name}.npy")
        np.save(files[-1], rng.uniform(-100, 250, (depth, 32, 32)).astype(np.float32))
    assert main(["export", "--format", "onnx", "--quantize", "int8", "--out", str(tmp_path / "q.onnx"),
                 "--checkpoint", str(golden_checkpoint), *SIZE, "--calibration", *map(str, files)]) == 0
    report = report_of(capsys.readouterr().out)
    assert (report["calibrated"], report["held"]) == (6, 5)


def test_the_agreement_of_a_model_with_itself_is_exact(golden_checkpoint, tmp_path):
    from unet3plus.export import export_network

    net = create_network(checkpoint=golden_checkpoint)
    path = export_network(net, tmp_path / "fp32.onnx", "onnx", (2, 3, 32, 32))
    _, held_out = calibration_and_held_out(net, (2, 3, 32, 32), n_held_out=3)
    report = compare_models(path, path, padded_batches(held_out, (2, 3, 32, 32)), real_slices=3)
    assert (report.max_logit_error, report.mask_dice, report.held_out_slices) == (0.0, 1.0, 3)


def test_mask_dice():
    a = np.zeros((2, 4, 4), np.uint8)
    b = a.copy()
    assert mask_dice(a, b) == 1.0  # both empty
    a[0, :2] = 1  # 8 pixels
    b[0, :1] = 1  # 4 of them
    assert mask_dice(a, b) == pytest.approx(2 * 4 / 12)
    a[1, 0, 0], b[1, 0, 0] = 2, 2  # a second label, in perfect agreement: mean over labels
    assert mask_dice(a, b) == pytest.approx((2 * 4 / 12 + 1.0) / 2)


def test_quantize_without_the_extra_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    code = main(["export", "--format", "onnx", "--quantize", "int8", "--out", str(tmp_path / "q.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install -e '.[quantize]'" in err and "onnx" in err
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("extra, message", [(["--format", "mindir", "--quantize", "int8"], "use --format onnx"),
                                            (["--format", "onnx", "--calibration", "x.npy"], "add --quantize int8")])
def test_quantize_option_mistakes(tmp_path, capsys, extra, message):
    assert main(["export", "--out", str(tmp_path / "m.onnx"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_model_of_two_inputs_calibrates_on_tuples_feeding_both(tmp_path):
    onnx = pytest.importorskip("onnx")
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from unet3plus.export.quantize import quantize_onnx

    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 2, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Add", ["c", "shift"], ["y"])],
        "two_inputs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8]),
                       helper.make_tensor_value_info("shift", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=[weight])
    fp32 = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(fp32))
    rng = np.random.default_rng(1)
    batches = [(rng.random((1, 2, 8, 8), dtype=np.float32), rng.random((1, 4, 8, 8), dtype=np.float32))
               for _ in range(3)]
    int8 = quantize_onnx(fp32, tmp_path / "two-int8.onnx", batches, op_types=["Conv"])
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(int8)).graph.node)
    inputs = {"x": batches[0][0], "shift": batches[0][1]}
    expected, = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, inputs)
    got, = onnxruntime.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, inputs)
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
