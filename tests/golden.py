"""The golden reference, carried in tests/data so that a fresh clone needs nothing beside it.

`golden_seeded.npz` holds an input and the logits the reference UNet3+ (eval mode) returns for it when every
published parameter holds the value `seeded_value(name, shape)` gives. So the weights, and a checkpoint in
the published training-step format around them, are rebuilt here instead of being carried (20 MB).
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Dict, List, Tuple

import mindspore as ms
import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
MANIFEST_TSV = DATA_DIR / "unet3plus_lits2017_checkpoint_params.tsv"
GOLDEN_SEEDED = DATA_DIR / "golden_seeded.npz"
PUBLISHED_CARD_HEADER = DATA_DIR / "published_hub_card_header.tsv"
NETWORK_PREFIX = "network."

ManifestRow = Tuple[str, Tuple[int, ...], str, str]


def read_manifest() -> List[ManifestRow]:
    """Rows (name, shape, dtype, role) of the published checkpoint, as the .tsv lists them."""
    rows = []
    for line in MANIFEST_TSV.read_text().splitlines():
        if line.startswith("#") or line.startswith("name\t") or not line.strip():
            continue
        name, shape, dtype, role = line.split("\t")
        dims = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
        rows.append((name, dims, dtype, role))
    return rows


def read_published_card_header() -> Dict[str, str]:
    """The YAML header fields of the public hub card, one `key<TAB>value` a line."""
    lines = PUBLISHED_CARD_HEADER.read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if line.strip() and not line.startswith("#"))


def seeded_value(name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """The reference README's recipe: the value depends on the parameter's name and shape only."""
    rng = np.random.default_rng([7, zlib.crc32(name.encode())])
    if name.endswith("moving_variance"):
        value = rng.uniform(0.5, 2.0, shape)
    elif name.endswith("gamma"):
        value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith(("beta", "moving_mean")):
        value = rng.normal(0.0, 0.1, shape)
    else:
        value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
    return value.astype(np.float32)


def seeded_network_weights(manifest: List[ManifestRow]) -> Dict[str, np.ndarray]:
    """The 171 network parameters (names without `network.`) holding the golden values."""
    return {name[len(NETWORK_PREFIX):]: seeded_value(name[len(NETWORK_PREFIX):], shape)
            for name, shape, _, _ in manifest if name.startswith(NETWORK_PREFIX)}


def published_format_entries(manifest: List[ManifestRow]) -> List[dict]:
    """Every entry of the manifest, as the published training script saved them: `network.` weights, Adam
    moments named after the unprefixed weights (non-zero, so loading one by mistake changes the logits), step
    state. Shapes and dtypes come from the manifest, so a drift in either shows up as a failed load."""
    weights = seeded_network_weights(manifest)
    step_state = {"global_step": np.array([1200], np.int32), "learning_rate": np.float32(1e-3),
                  "beta1_power": np.float32(0.9 ** 1200), "beta2_power": np.float32(0.999 ** 1200)}
    entries = []
    for name, shape, dtype, _ in manifest:
        if name.startswith(NETWORK_PREFIX):
            value = weights[name[len(NETWORK_PREFIX):]]
        elif name.startswith(("moment1.", "moment2.")):
            value = np.abs(seeded_value(name, shape)) * 1e-3
        else:
            value = np.asarray(step_state[name])
        assert tuple(value.shape) == shape and str(ms.Tensor(value).dtype) == dtype, name
        entries.append({"name": name, "data": ms.Tensor(value)})
    return entries


def write_published_format_checkpoint(manifest: List[ManifestRow], path: Path) -> Path:
    ms.save_checkpoint(published_format_entries(manifest), str(path))
    return path


def read_golden_io() -> Dict[str, np.ndarray]:
    """`input` (1x3x64x96: non-square, so height/width mix-ups show) and the reference `logits` (1x1x64x96)."""
    with np.load(GOLDEN_SEEDED) as data:
        return {key: data[key] for key in data.files}
