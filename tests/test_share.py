"""Fine-tuned models are first-class: the config inside the checkpoint, one build path, publish and load back.

One tiny 3-class run (zscore, resized 48 x 40 -> 32 x 32, one epoch) serves every test of this module.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from conftest import REPO_ROOT
from loopback_server import LoopbackServer
from PIL import Image

from unet3plus import create_network, read_model_config
from unet3plus.cli import main
from unet3plus.data import DataOptions, SegmentationDataset, synthetic_organs
from unet3plus.errors import InputError
from unet3plus.hub import CardError, ChecksumError, ModelConfig, ModelConfigError, save_network
from unet3plus.hub.download import checkpoint_path, sha256_of
from unet3plus.hub.model_config import CONFIG_ENTRY
from unet3plus.hub.publish import publish
from unet3plus.training import LAST, TrainConfig, Trainer
from unet3plus.transforms.geometry import resize_image

pytestmark = pytest.mark.usefixtures("isolated_cache")

RAW_SIZE, TRAIN_SIZE = (48, 40), (32, 32)
CLASS_NAMES = ["background", "organ", "lesion"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Raw 8-bit PNGs of a size the network cannot take, masks 0/100/200; trained as `unet3plus train
    --n-classes 3 --label-map 100:1,200:2 --normalize zscore --size 32 32` would."""
    root = tmp_path_factory.mktemp("share")
    images, masks = synthetic_organs(8, RAW_SIZE, n_classes=3, seed=1, empty_fraction=0)
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for i, (image, mask) in enumerate(zip(images, masks)):
        stem = f"patient{i // 2}_slice{i % 2}"
        Image.fromarray((image * 200 + 20).astype(np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray((mask * 100).astype(np.uint8)).save(root / "masks" / f"{stem}.png")
    options = DataOptions(n_classes=3, label_map={100: 1, 200: 2}, size=TRAIN_SIZE, normalize="zscore")
    data = SegmentationDataset.from_folders(root / "images", root / "masks", options)
    trainer = Trainer(data, None, TrainConfig(root / "run", epochs=1, batch_size=2, augment=False, progress=False,
                                              class_names=CLASS_NAMES), log=lambda message: None)
    trainer.fit()
    trainer.net.set_train(False)
    return root, trainer


def logits(net, batch: np.ndarray) -> np.ndarray:
    net.set_train(False)
    return net(ms.Tensor(batch)).asnumpy()


def test_checkpoint_carries_its_config_and_rebuilds_the_trained_network(run):
    root, trainer = run
    config = read_model_config(root / "run" / LAST)  # no network built
    assert (config.architecture.in_channels, config.architecture.n_classes) == (3, 3)
    assert config.input.normalize == "zscore" and config.input.size == TRAIN_SIZE and config.input.preset is None
    assert config.label_map == {100: 1, 200: 2} and list(config.class_names) == CLASS_NAMES
    facts = config.provenance
    assert facts["epochs"] == 1 and facts["mindspore_version"] == ms.__version__ and "base_weights_sha256" not in facts
    assert facts["data"]["image_size"] == list(TRAIN_SIZE) and re.match(r"\d{4}-\d\d-\d\dT", facts["created_utc"])

    net = create_network("unet3plus", checkpoint=root / "run" / LAST)  # the name that used to give 1 class
    assert net.n_classes == 3 and net.load_report.complete
    assert net.load_report.skipped == {CONFIG_ENTRY: "metadata (model config or run state), not a weight"}
    batch = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(logits(net, batch), logits(trainer.net, batch))
    # what mindspore_hub does: every weight loads, the config entry is only "not loaded"
    plain = create_network("unet3plus", n_classes=3)
    not_loaded, checkpoint_not_loaded = ms.load_param_into_net(plain, ms.load_checkpoint(str(root / "run" / LAST)))
    assert not_loaded == [] and checkpoint_not_loaded == [CONFIG_ENTRY]


def test_contradicting_arguments_raise_and_an_explicit_transfer_warns(run, caplog):
    root, _ = run
    with pytest.raises(InputError, match=r"n_classes=1 but the checkpoint's config says n_classes=3.*transfer=True"):
        create_network(checkpoint=root / "run" / LAST, n_classes=1)
    with pytest.raises(InputError, match=r"in_channels=1 but .* in_channels=3"):
        create_network(checkpoint=root / "run" / LAST, in_channels=1)
    with caplog.at_level("WARNING"):
        net = create_network(checkpoint=root / "run" / LAST, n_classes=2, transfer=True)
    assert net.n_classes == 2 and list(net.load_report.newly_initialised) == ["outconv1.weight"]
    assert any("outconv1.weight is newly initialised" in record.getMessage() for record in caplog.records)
    assert net.model_config.architecture.n_classes == 2 and net.model_config.input.normalize == "zscore"


def by_hand(net, png: Path) -> np.ndarray:
    """The training preparation written out: zscore, grey to 3 channels, bilinear to 32 x 32; softmax
    probabilities back to the image's own size."""
    image = np.asarray(Image.open(png)).astype(np.float32)
    image = (image - image.mean()) / image.std()
    batch = resize_image(np.repeat(image[None], 3, axis=0), TRAIN_SIZE)[None]
    scores = logits(net, batch)[0]
    probabilities = np.exp(scores - scores.max(axis=0)) / np.exp(scores - scores.max(axis=0)).sum(axis=0)
    return resize_image(probabilities, RAW_SIZE)


def test_predict_prepares_raw_images_as_in_training_and_maps_back(run, tmp_path, caplog):
    root, trainer = run
    png = root / "images" / "patient0_slice0.png"
    assert main(["predict", str(png), "--out", str(tmp_path / "out"), "--checkpoint", str(root / "run" / LAST),
                 "--probabilities", "--no-progress", "--mode", "pynative"]) == 0
    probabilities = np.load(tmp_path / "out" / "patient0_slice0_probabilities.npy")
    assert probabilities.shape == (3,) + RAW_SIZE
    np.testing.assert_allclose(probabilities, by_hand(trainer.net, png), atol=1e-5)
    with Image.open(tmp_path / "out" / "patient0_slice0_mask.png") as mask:
        assert mask.size == RAW_SIZE[::-1]
    with caplog.at_level("WARNING"):  # an explicit preset still wins, with a warning
        assert main(["predict", str(png), "--out", str(tmp_path / "image"), "--checkpoint", str(root / "run" / LAST),
                     "--preset", "image", "--probabilities", "--no-progress", "--mode", "pynative"]) == 0
    assert any("preset image overrides" in record.getMessage() for record in caplog.records)
    assert not np.allclose(np.load(tmp_path / "image" / "patient0_slice0_probabilities.npy")[:, :32, :32],
                           probabilities[:, :32, :32], atol=1e-3)


def test_config_less_checkpoints_load_with_a_notice(run, tmp_path, caplog):
    root, trainer = run
    ms.save_checkpoint(trainer.net, str(tmp_path / "other_tool.ckpt"))  # no config entry
    with caplog.at_level("WARNING"):
        net = create_network(checkpoint=tmp_path / "other_tool.ckpt")
    assert net.n_classes == 3 and net.load_report.complete and net.model_config.input is None
    assert any("has no model config" in record.getMessage() and "n_classes=3" in record.getMessage()
               for record in caplog.records)
    assert read_model_config(tmp_path / "other_tool.ckpt") is None
    assert main(["info", str(tmp_path / "other_tool.ckpt")]) == 0


def test_bad_config_entries_name_the_file_and_the_fix(run, tmp_path, caplog):
    _, trainer = run
    wrong = tmp_path / "wrong.ckpt"
    save_network(trainer.net, wrong, ModelConfig())  # says 1 class, holds a 3-class head
    with pytest.raises(ModelConfigError, match=r"wrong\.ckpt.*disagrees with its own weights.*n_classes: config 1, "
                                               r"weights 3.*ignore_config=True"):
        create_network(checkpoint=wrong)
    assert create_network(checkpoint=wrong, ignore_config=True).n_classes == 3
    damaged = tmp_path / "damaged.ckpt"
    ms.save_checkpoint(trainer.net, str(damaged), append_dict={CONFIG_ENTRY: "{not json"})
    with pytest.raises(ModelConfigError, match=r"damaged\.ckpt has an unreadable model config"):
        read_model_config(damaged)
    newer = json.loads(trainer.model_config({"epoch": 1, "best_dice": None, "best_epoch": None}).to_json())
    newer.update(schema_version=99, hologram={"x": 1})
    newer["input"]["spectral_bands"] = 7
    future = tmp_path / "future.ckpt"
    ms.save_checkpoint(trainer.net, str(future), append_dict={CONFIG_ENTRY: json.dumps(newer)})
    with caplog.at_level("WARNING"):
        net = create_network(checkpoint=future)
    assert net.n_classes == 3 and net.load_report.complete
    assert any("future.ckpt" in r.getMessage() and "hologram, input.spectral_bands" in r.getMessage()
               for r in caplog.records)


def load_hub_config(path: Path):
    spec = importlib.util.spec_from_file_location(path.name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_publish_then_load_back_by_card_url_checkpoint_url_and_hub(run, tmp_path, capsys):
    root, trainer = run
    batch = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    expected = logits(trainer.net, batch)
    with LoopbackServer() as server:
        base = server.url("/models")
        assert main(["publish", str(root / "run"), "--out", str(tmp_path / "pub"), "--url", base,
                     "--name", "organs_v1"]) == 0
        checkpoint, card = tmp_path / "pub" / "organs_v1.ckpt", tmp_path / "pub" / "organs_v1.md"
        digest = sha256_of(checkpoint)
        text = card.read_text()
        assert digest in capsys.readouterr().out
        for fact in (f"asset-link: <{base}/organs_v1.ckpt>", f"asset-sha256: {digest}", "model-name: UNet3+",
                     "train-dataset: custom", "| 2 | lesion |", "normalize=zscore", "resized to 32 x 32",
                     "Intended use and limitations", f'create_network("{base}/organs_v1.md")'):
            assert fact in text, fact
        assert re.search(r"^evaluation: dice\d+\.\d$", text, re.M)
        assert read_model_config(checkpoint).provenance["source_checkpoint_sha256"] == sha256_of(root / "run" / "best.ckpt")

        server.serve("/models/organs_v1.ckpt", checkpoint.read_bytes())
        server.serve("/models/organs_v1.md", card.read_bytes())
        net = create_network(f"{base}/organs_v1.md")  # card URL -> verified cache -> config -> strict load
        assert net.n_classes == 3 and net.load_report.complete
        assert net.load_report.source == str(checkpoint_path(sha256_of(checkpoint), "organs_v1.ckpt", tmp_path / "cache"))
        np.testing.assert_array_equal(logits(net, batch), expected)
        png = root / "images" / "patient0_slice0.png"
        assert main(["predict", str(png), "--out", str(tmp_path / "by_card"), "--checkpoint", f"{base}/organs_v1.md",
                     "--probabilities", "--no-progress", "--mode", "pynative"]) == 0
        np.testing.assert_allclose(np.load(tmp_path / "by_card" / "patient0_slice0_probabilities.npy"),
                                   by_hand(trainer.net, png), atol=1e-5)
        again = create_network(checkpoint=f"{base}/organs_v1.ckpt", sha256=digest)  # from the cache
        np.testing.assert_array_equal(logits(again, batch), expected)
        assert server.requests_for("/models/organs_v1.ckpt") == [None]
        with pytest.raises(InputError, match=r"refusing the remote checkpoint .* sha256="):
            create_network(checkpoint=f"{base}/organs_v1.ckpt")

        wrong = text.replace(digest, "0" * 64)
        server.serve("/models/wrong.md", wrong.replace("organs_v1.ckpt", "wrong.ckpt").encode())
        server.serve("/models/wrong.ckpt", checkpoint.read_bytes())
        with pytest.raises(ChecksumError, match="0" * 64):
            create_network(f"{base}/wrong.md")
        assert not (tmp_path / "cache" / "checkpoints" / "wrong.ckpt").exists()  # nothing unverified kept
        server.serve("/models/unhashed.md", text.replace(digest, "see-the-release-page").encode())
        with pytest.raises(CardError, match=r"unhashed\.md has no valid asset-sha256"):
            create_network(f"{base}/unhashed.md")

    local = create_network(card)  # a local card: its asset beside it is verified, then loaded
    np.testing.assert_array_equal(logits(local, batch), expected)
    (tmp_path / "altered").mkdir()
    (tmp_path / "altered" / "organs_v1.md").write_text(text)
    altered = bytearray(checkpoint.read_bytes())
    altered[-1] ^= 0xFF
    (tmp_path / "altered" / "organs_v1.ckpt").write_bytes(bytes(altered))
    with pytest.raises(ChecksumError, match=r"altered/organs_v1\.ckpt has SHA-256"):
        create_network(tmp_path / "altered" / "organs_v1.md")

    # mindspore_hub.load(card, source="local", pretrained=True, **kwargs): the conf file's create_network with
    # the card's model-name and the kwargs the card gives, then load_param_into_net of the asset
    call = re.search(r'mindspore_hub\.load\("organs_v1\.md", source="local", pretrained=True, (.*)\)', text)
    kwargs = eval(f"dict({call.group(1)})")  # noqa: S307 (our own card's text)
    model_name = re.search(r"^model-name: (.*)$", text, re.M).group(1)
    hub_net = load_hub_config(REPO_ROOT / "mindspore_hub_conf.py").create_network(model_name.lower(), **kwargs)
    not_loaded, _ = ms.load_param_into_net(hub_net, ms.load_checkpoint(str(checkpoint)))
    assert not_loaded == []
    np.testing.assert_array_equal(logits(hub_net, batch), expected)


def test_info_prints_the_checkpoint_config(run, capsys):
    root, _ = run
    assert main(["info", str(root / "run" / LAST)]) == 0
    out = capsys.readouterr().out
    for fact in ("3 / 3", "normalize=zscore", "background, organ, lesion", '"100": 1', sha256_of(root / "run" / LAST)):
        assert fact in out, fact


def test_publish_refuses_to_overwrite_and_bad_urls(run, tmp_path):
    root, _ = run
    publish(root / "run", tmp_path, "http://127.0.0.1:9/models", "m")
    with pytest.raises(InputError, match="already exist"):
        publish(root / "run", tmp_path, "http://127.0.0.1:9/models", "m")
    with pytest.raises(InputError, match="http"):
        publish(root / "run", tmp_path, "ftp://example/models", "n")


def test_export_takes_size_and_verification_input_from_the_checkpoint(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from unet3plus.export import verification_batch

    root, trainer = run
    assert main(["export", "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--checkpoint",
                 str(root / "run" / LAST), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "input 1 x 3 x 32 x 32" in out  # the trained size, not the 512 x 512 default
    assert float(re.search(r"max abs difference (\S+)", out).group(1)) <= 1e-4
    batch = verification_batch(trainer.net, (2, 3, 32, 32))  # the trained net knows its input config too
    for image in batch:  # zscore-normalised as in training (per image), not uniform noise in [0, 1)
        assert abs(float(image.mean())) < 0.1 and image.min() < -1.0
