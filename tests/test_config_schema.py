"""Every field of a checkpoint's model config is checked on read against one schema (hub/model_config.py).

A checkpoint whose SHA-256 is right can still hold a config that was edited or written by another tool: each
such config must end in one line naming the field, what it holds and the fix, never a traceback, a MindSpore
error or a huge allocation. The checkpoints here hold one tiny tensor and the raw config text.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Dict

import mindspore as ms
import numpy as np
import pytest
from loopback_server import LoopbackServer

from unet3plus import create_network, read_model_config
from unet3plus.cli import main
from unet3plus.hub import Architecture, CardError, InputConfig, ModelConfig, ModelConfigError, read_card
from unet3plus.hub.model_config import CONFIG_ENTRY, MAX_CONFIG_CHARS, NORMALIZATIONS, SCHEMA

pytestmark = pytest.mark.usefixtures("isolated_cache")

VALID = ModelConfig(architecture=Architecture(in_channels=3, n_classes=1),
                    input=InputConfig(normalize="zscore", size=(32, 48), window=(-100.0, 400.0)),
                    label_map={255: 1}, class_names=("background", "liver"), provenance={"epochs": 1})


def write_checkpoint(path: Path, config_text: str) -> Path:
    """A checkpoint with one tiny weight and ``config_text`` as its raw config entry."""
    weight = [{"name": "conv1.conv.0.weight", "data": ms.Tensor(np.zeros((2, 3, 3, 3), np.float32))}]
    ms.save_checkpoint(weight, str(path), append_dict={CONFIG_ENTRY: config_text})
    return path


def edited(change: Callable[[Dict[str, Any]], None]) -> str:
    data = json.loads(VALID.to_json())
    change(data)
    return json.dumps(data)  # allow_nan: NaN is written as the bare token another tool could write


def setting(*keys: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def change(data: Dict[str, Any]) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return change


# (config text, the field the message must name, what it must say the field holds)
BAD_CONFIGS = {
    "normalize bogus": (edited(setting("input", "normalize", value="bogus")), "input.normalize", '"bogus"'),
    "normalize NaN": (edited(setting("input", "normalize", value=float("nan"))), "input.normalize", "NaN"),
    "label_map list": (edited(setting("label_map", value=[[255, 1]])), "label_map", "[[255, 1]]"),
    "label_map key not int": (edited(setting("label_map", value={"x": 1})), "label_map", '{"x": 1}'),
    "label_map value float": (edited(setting("label_map", value={"255": 1.0})), "label_map", '{"255": 1.0}'),
    "label_map target beyond classes": (edited(setting("label_map", value={"255": 5})), "label_map", '{"255": 5}'),
    "provenance string": (edited(setting("provenance", value="trained by me")), "provenance", '"trained by me"'),
    "n_classes float": (edited(setting("architecture", "n_classes", value=1.0)), "architecture.n_classes", "1.0"),
    "in_channels bool": (edited(setting("architecture", "in_channels", value=True)), "architecture.in_channels",
                         "true"),
    "cgm int": (edited(setting("architecture", "cgm", value=1)), "architecture.cgm", "1"),
    "window 3 values": (edited(setting("input", "window", value=[-100, 0, 400])), "input.window", "[-100, 0, 400]"),
    "window reversed": (edited(setting("input", "window", value=[400, -100])), "input.window", "[400, -100]"),
    "window NaN": (edited(setting("input", "window", value=[float("nan"), 400])), "input.window", "[NaN, 400]"),
    "window 400-digit integer": (edited(setting("input", "window", value=[-10 ** 400, 400])), "input.window",
                                 "[-1000000"),
    "window infinite": ("{" + '"input": {"window": [-Infinity, 400]}' + "}", "input.window", "[-Infinity, 400]"),
    "size string": (edited(setting("input", "size", value="ab")), "input.size", '"ab"'),
    "size zero": (edited(setting("input", "size", value=[0, 0])), "input.size", "[0, 0]"),
    "size negative": (edited(setting("input", "size", value=[-64, 64])), "input.size", "[-64, 64]"),
    "size huge": (edited(setting("input", "size", value=[60000, 60000])), "input.size", "[60000, 60000]"),
    "size not multiple of 16": (edited(setting("input", "size", value=[40, 40])), "input.size", "[40, 40]"),
    "size floats": (edited(setting("input", "size", value=[32.0, 32.0])), "input.size", "[32.0, 32.0]"),
    "three names for one class": (edited(setting("class_names", value=["background", "liver", "tumour"])),
                                  "class_names", '["background", "liver", "tumour"]'),
    "schema_version negative": (edited(setting("schema_version", value=-7)), "schema_version", "-7"),
    "architecture null": (edited(setting("architecture", value=None)), "architecture", "null"),
    "input string": (edited(setting("input", value="zscore")), "input", '"zscore"'),
    "top level list": ("[1, 2, 3]", "(top level)", "[1, 2, 3]"),
}


@pytest.mark.parametrize("reader", ["read_model_config", "create_network"])
@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_field_is_one_line_naming_field_value_and_fix(case, reader, tmp_path):
    text, field, shown = BAD_CONFIGS[case]
    path = write_checkpoint(tmp_path / "bad.ckpt", text)
    with pytest.raises(ModelConfigError) as raised:
        read_model_config(path) if reader == "read_model_config" else create_network("unet3plus", checkpoint=path)
    message = str(raised.value)
    assert "\n" not in message and "bad.ckpt" in message
    assert f"field '{field}' holds {shown}" in message, message
    assert "expected" in message and "get an intact copy" in message


def test_deeply_nested_json_is_refused_before_parsing(tmp_path):
    depth = 200_000
    path = write_checkpoint(tmp_path / "deep.ckpt", '{"provenance": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ModelConfigError, match=rf"deep\.ckpt: .* nests {depth + 1} levels deep, more than the 32"):
        read_model_config(path)
    with pytest.raises(ModelConfigError, match="levels deep"):
        create_network("unet3plus", checkpoint=path)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    text = edited(setting("provenance", value={"note": "[[[[{{{{" * 20 + '\\" ]]' * 10}))
    config = read_model_config(write_checkpoint(tmp_path / "quoted.ckpt", text))
    assert config.provenance["note"].startswith("[[[[{{{{")


def test_oversized_config_is_refused(tmp_path):
    text = edited(setting("provenance", value={"padding": "x" * MAX_CONFIG_CHARS}))
    with pytest.raises(ModelConfigError, match=r"big\.ckpt: .* is \d+ characters, more than the 1048576"):
        read_model_config(write_checkpoint(tmp_path / "big.ckpt", text))


def test_valid_config_reads_back_exactly(tmp_path):
    assert read_model_config(write_checkpoint(tmp_path / "ok.ckpt", VALID.to_json())) == VALID
    sigmoid_unnamed = VALID.replace(class_names=(), input=InputConfig(preset="lits2017"), label_map=None)
    assert read_model_config(write_checkpoint(tmp_path / "unnamed.ckpt", sigmoid_unnamed.to_json())) == sigmoid_unnamed
    three = VALID.replace(architecture=Architecture(n_classes=3), class_names=("background", "organ", "lesion"),
                          label_map={100: 1, 200: 2})
    assert read_model_config(write_checkpoint(tmp_path / "three.ckpt", three.to_json())) == three
    assert ModelConfig.from_dict(dataclasses.asdict(three)) == three  # Python tuples and int keys, too


def test_the_schema_covers_every_field_and_normalize_has_one_source():
    from unet3plus.transforms import intensity

    declared = {f"{prefix}{name}" for prefix, cls in (("", ModelConfig), ("architecture.", Architecture),
                                                      ("input.", InputConfig))
                for name in cls.__dataclass_fields__}
    assert declared == set(SCHEMA)
    assert intensity.NORMALIZATIONS is NORMALIZATIONS


def test_cli_info_prints_one_line_and_exits_2(tmp_path, capsys):
    path = write_checkpoint(tmp_path / "bad.ckpt", BAD_CONFIGS["size huge"][0])
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("unet3plus info: error: ")
    assert "'input.size' holds [60000, 60000]" in lines[0] and "Traceback" not in captured.err


def test_non_utf8_card_is_one_line(tmp_path):
    card = tmp_path / "model.md"
    card.write_bytes(b"---\nmodel-name: UNet3+\nasset-sha256: \xff\xfe\n---\n")
    with pytest.raises(CardError, match=r"model\.md is not UTF-8 text \(byte \d+ is 0xff\)") as raised:
        read_card(card)
    assert "\n" not in str(raised.value)
    with pytest.raises(CardError, match="not UTF-8"):
        create_network(card)
    with LoopbackServer() as server:  # a fetched card is decoded the same way
        server.serve("/model.md", card.read_bytes())
        with pytest.raises(CardError, match=r"model\.md is not UTF-8 text"):
            read_card(server.url("/model.md"))
