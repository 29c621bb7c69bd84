"""``publish``: a trained run becomes a shareable model the way the published one is shared.

It writes ``NAME.ckpt`` (network only, with its model config inside, so one SHA-256 covers both) and
``NAME.md``, a MindSpore Hub card in the published card's format (``cards/unet3plus_lits2017.md``) whose
``asset-link`` is ``BASE_URL/NAME.ckpt`` and whose ``asset-sha256`` is that file's hash, followed by a
readable body (classes, input preparation, data, metrics, intended use and limitations, loading calls).
Upload both files to ``BASE_URL``; readers load them with ``create_network("BASE_URL/NAME.md")``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Tuple, Union
from urllib.parse import urlsplit

from .._atomic import atomic_path
from ..errors import InputError
from .builder import build_from_checkpoint
from .card import SHA256_HEX, parse_card
from .download import sha256_of
from .model_config import ModelConfig, save_network
from .registry import PROJECT_URL
from .transfer import redact_url

PathLike = Union[str, "os.PathLike[str]"]
BEST, LAST = "best.ckpt", "last.ckpt"  # a run folder publishes its best network; its last only when asked
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CARD_BREAKS = ("---", "\n", "\r")  # the card reader splits its header at '---' and reads one field per line


@dataclass(frozen=True)
class Published:
    checkpoint: Path
    card: Path
    sha256: str
    asset_link: str
    source: Optional[Path] = None  # the checkpoint that was published


def publish(source: PathLike, out_dir: PathLike, base_url: str, name: Optional[str] = None, *,
            train_dataset: str = "custom", license: str = "Apache-2.0", author: str = "unet3plus user",
            overwrite: bool = False, last: bool = False) -> Published:
    """Write ``NAME.ckpt`` and its hub card ``NAME.md`` into ``out_dir`` from a run folder (its
    ``best.ckpt``, or its ``last.ckpt`` with ``last``) or a checkpoint file; the card points at
    ``base_url/NAME.ckpt``. Everything the card's header holds is checked first, so the card always loads."""
    checkpoint, name, targets = publish_targets(source, out_dir, name, last=last)
    check_base_url(base_url)
    for option, value in (("--train-dataset", train_dataset), ("--license", license), ("--author", author)):
        _check_card_value(option, value)
    if any(path.resolve() == checkpoint.resolve() for path in targets):
        raise InputError(f"{checkpoint} is the checkpoint to publish and would be replaced; choose another --out or "
                         "--name (overwrite never replaces the source)")
    existing = [str(path) for path in targets if path.exists()]
    if existing and not overwrite:
        raise InputError(f"{', '.join(existing)} already exist(s); choose another --out or --name, or pass --overwrite")
    net = build_from_checkpoint(checkpoint)  # strict, and checked against its own config
    config = net.model_config.replace(provenance=dict(
        net.model_config.provenance, source_checkpoint_sha256=sha256_of(checkpoint),
        published_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")))
    link = f"{base_url.rstrip('/')}/{targets[0].name}"
    _check_card_reads_back(render_card(name, config, link, "0" * 64, train_dataset=train_dataset, license=license,
                                       author=author), link)
    save_network(net, targets[0], config)
    digest = sha256_of(targets[0])
    text = render_card(name, config, link, digest, train_dataset=train_dataset, license=license, author=author)
    with atomic_path(targets[1]) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Published(targets[0], targets[1], digest, link, checkpoint)


def publish_targets(source: PathLike, out_dir: PathLike, name: Optional[str] = None, *,
                    last: bool = False) -> Tuple[Path, str, Tuple[Path, Path]]:
    """``(source checkpoint, model name, (NAME.ckpt, NAME.md))``, known before anything is read or written, so
    callers can check the outputs against the source first."""
    checkpoint = run_checkpoint(Path(source), last=last)
    name = name or f"unet3plus_{(Path(source) if Path(source).is_dir() else checkpoint).stem}"
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(f"model name {name!r} must be letters, digits, '_', '.' or '-' (it names the files); "
                         "choose another --name")
    _check_card_value("model name", name)
    out = Path(out_dir)
    return checkpoint, name, (out / f"{name}.ckpt", out / f"{name}.md")


def run_checkpoint(source: Path, *, last: bool = False) -> Path:
    """The checkpoint a source publishes: a file itself, a run folder's ``best.ckpt`` (never silently its
    ``last.ckpt``, the final epoch's network: only with ``last``)."""
    if source.is_file():
        if last:
            raise InputError(f"--last picks a run folder's {LAST}, but {source} is a checkpoint file; pass the run "
                             "folder, or drop --last")
        return source
    if source.is_dir():
        wanted = source / (LAST if last else BEST)
        if wanted.is_file():
            return wanted
        if not last and (source / LAST).is_file():
            raise InputError(f"{source} holds no {BEST} (no validation picked a best network), only {LAST}, the final "
                             "epoch's; pass --last to publish it, or a checkpoint file")
        raise InputError(f"{source} holds no {wanted.name}; pass a training run's --out folder or a checkpoint file")
    raise InputError(f"{source} does not exist; pass a training run's --out folder or a checkpoint file")


def check_base_url(base_url: str) -> None:
    """The folder URL goes into the public card and the console: an http(s) URL with a host, and nothing
    secret (user info, a query string such as a signature or token, a fragment). Messages never echo it whole."""
    try:
        parts = urlsplit(base_url)
        has_host = bool(parts.hostname)
    except ValueError:
        raise InputError("--url is not a valid URL; give the http(s) folder the files will be uploaded to") from None
    if "@" in parts.netloc:
        raise InputError(f"--url {redact_url(base_url)} carries user info (user:password@), which the card would "
                         "publish; give the public folder URL and upload with your credentials separately")
    if parts.query or parts.fragment:
        raise InputError(f"--url {redact_url(base_url)} has a query string or fragment (a signature or token would be "
                         "published, and the file URL cannot be built from it); give the plain public folder URL")
    if parts.scheme.lower() not in ("http", "https") or not has_host:
        raise InputError(f"--url {base_url!r} must be the http(s) folder the files will be uploaded to")
    if any(character.isspace() or character in "<>" for character in base_url):
        raise InputError(f"--url {base_url!r} holds spaces or '<' '>', which a hub card's asset-link cannot; "
                         "percent-encode them")
    _check_card_value("--url", base_url)


def _check_card_value(option: str, value: str) -> None:
    if any(text in value for text in CARD_BREAKS):
        raise InputError(f"{option} {value!r} holds '---' or a line break, which would break the hub card's header "
                         "(readers would refuse it: no asset-sha256); choose another value")


def _check_card_reads_back(text: str, link: str) -> None:
    """What the card reader will find in this card: its own asset link and a well-formed hash."""
    card = parse_card(text, "the card to write")
    if card.asset_link != link or not SHA256_HEX.match(card.asset_sha256):
        raise InputError("the options given would write a hub card that readers refuse (its header would not hold "
                         "this asset-link and asset-sha256); remove '---', '<', '>' and line breaks from --name, "
                         "--url, --author, --license and --train-dataset")


def hub_kwargs(config: ModelConfig) -> str:
    """The keyword arguments a reader passes to ``mindspore_hub.load`` to build this architecture."""
    return ", ".join(f"{key}={value!r}" for key, value in config.architecture.kwargs().items())


def render_card(name: str, config: ModelConfig, asset_link: str, sha256: str, *, train_dataset: str,
                license: str, author: str) -> str:
    import mindspore

    from .._version import __version__

    provenance = config.provenance
    best = provenance.get("best_metric") or {}
    evaluation = f"dice{100 * best['value']:.1f}" if best.get("value") is not None else "unknown"
    n_classes = config.architecture.n_classes
    task = "binary" if n_classes == 1 else f"{n_classes}-class"
    header = [
        ("model-name", "UNet3+"), ("backbone-name", "UNet3+"), ("module-type", "cv"), ("fine-tunable", "True"),
        ("model-version", __version__), ("train-dataset", train_dataset), ("evaluation", evaluation),
        ("author", author), ("update-time", datetime.now(timezone.utc).strftime("%Y-%m-%d")),
        ("repo-link", f"<{PROJECT_URL}>"), ("user-id", author), ("used-for", "inference"),
        ("mindspore-version", ".".join(mindspore.__version__.split(".")[:2])),
    ]
    lines = [f"# {name}", "", "---", ""] + [f"{key}: {value}\n" for key, value in header]
    lines += ["asset:", "", "-", "    file-format: ckpt", f"    asset-link: <{asset_link}>",
              f"    asset-sha256: {sha256}", "", f"license: {license}", "",
              f"summary: UNet3+ fine-tuned with the unet3plus package for {task} segmentation of 2-D images", "",
              "---", ""]
    classes = "\n".join(f"| {value} | {label} |" for value, label in enumerate(config.class_names))
    data = provenance.get("data") or {}
    base = provenance.get("base_weights_sha256")
    body = f"""## Introduction

UNet 3+ ({config.architecture.in_channels} input channel(s), {n_classes} output channel(s), variants:
{', '.join(k for k in ('deep_supervision', 'cgm') if getattr(config.architecture, k)) or 'none'}) trained with
`unet3plus` {provenance.get('unet3plus_version', '?')} on MindSpore {provenance.get('mindspore_version', '?')}
for {provenance.get('epochs', '?')} epoch(s), starting from {f'the weights with SHA-256 `{base}`' if base else 'random initialisation'}.
The checkpoint carries its model config (read it with `unet3plus.read_model_config("{name}.ckpt")` or
`unet3plus info {name}.ckpt`); its SHA-256 above covers weights and config.

## Classes

| label value | class |
|---|---|
{classes}

Label map applied to the training masks: {json.dumps(config.label_map) if config.label_map else 'none'}.
{'The network returns one logit channel: apply a sigmoid.' if n_classes == 1 else 'The network returns one logit channel per class: apply a softmax, then the arg-max.'}

## Input preprocessing

{config.input.describe() if config.input else 'unknown (the source checkpoint carried no input config)'}.
`unet3plus.predict` and `unet3plus predict` apply it from the checkpoint's config, and resize the masks back
to each input's own size.

## Training data and metrics

Training images: {data.get('train_images', '?')}, validation images: {data.get('val_images', '?')}, prepared size:
{' x '.join(map(str, data.get('image_size', []))) or '?'}, loss: {data.get('loss', '?')}.
Best validation Dice (foreground classes, mean over images): {best.get('value', 'unknown')} at epoch {best.get('epoch', '?')}.

## Intended use and limitations

For research on images like the training data above. The metric comes from a small validation split of the
publisher's data and says nothing about other scanners, sites or populations; validate it on your own labelled
data before relying on it. It is not a medical device and must not be used for diagnosis.

## Usage

With the `unet3plus` package (the checkpoint is downloaded once into the verified cache, its SHA-256 checked
before it is loaded):

```python
import unet3plus
net = unet3plus.create_network("{asset_link.rsplit('/', 1)[0]}/{name}.md")   # or the path of a local copy of this card
net = unet3plus.create_network(checkpoint="{asset_link}",
                               sha256="{sha256}")
prediction = unet3plus.predict(net, "image.png")   # prepared as in training
```

From the command line: `unet3plus predict image.png --out masks/ --checkpoint {asset_link.rsplit('/', 1)[0]}/{name}.md`.

With MindSpore Hub: place this card and `{name}.ckpt` beside a checkout of the repo-link (named `unet3plus`):

```python
import mindspore_hub
net = mindspore_hub.load("{name}.md", source="local", pretrained=True, {hub_kwargs(config)})
```

## Model config

```json
{json.dumps(json.loads(config.to_json()), indent=2)}
```
"""
    return "\n".join(lines) + "\n" + body
