"""Fine-tune UNet3+ on a segmentation dataset: GRAPH-mode train step, validation every epoch, atomic
best/last/resume checkpoints, early stopping, a metrics log and a plot, optionally data-parallel.

>>> from unet3plus.data import DataOptions, SegmentationDataset
>>> from unet3plus.training import TrainConfig, train
>>> data = SegmentationDataset.from_folders("images", "masks", DataOptions(n_classes=1, label_map={255: 1}))
>>> result = train(data, None, TrainConfig(out_dir="runs/liver", epochs=20, pretrained=True, val_split=0.2))
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from mindspore import nn

from .._atomic import atomic_path, remove_stale_partials
from .._mindspore_log import without_mindspore_message
from .._progress import progress_bar
from ..data import Augmentation, DatasetError, SegmentationDataset, check_batch_size, make_loader, split_by_group
from ..data.split import group_key_from_pattern
from ..errors import InputError
from .checkpoints import (BEST, LAST, RESUME, ResumeError, TrainingStopped, commit_epoch, finish_commit,
                          load_resume_state)
from .class_report import describe_head_transfer, per_class_text
from .config import TrainConfig, TrainResult
from .distributed import Distributed
from .history import plot_curves, write_metrics_csv
from .memory import configure_memory_pool, release_free_heap

METRICS_CSV, CURVES_PNG, CONFIG_JSON = "metrics.csv", "curves.png", "train_config.json"
COMPILING = "compiling the training step (once per run, before the first step: 15-30 s on 2 CPU cores) ..."


def split_train_val(data: SegmentationDataset, val_fraction: float, seed: int = 0,
                    group_pattern: Optional[str] = None):
    """Patient-aware split of one dataset into ``(train, val)`` (see ``unet3plus.data.split_by_group``); a
    dataset with a ``group_key`` (a ``VolumeDataset``: the case) names its own groups."""
    key = group_key_from_pattern(group_pattern) if group_pattern else getattr(data, "group_key", None)
    train_indices, val_indices = split_by_group(data.names, val_fraction, seed, key)
    return data.subset(train_indices), data.subset(val_indices)


def build_network(options, config: TrainConfig, dist: Distributed):
    """The network to train, through the package's one builder: from ``config.checkpoint``, from the
    published weights (downloaded once, on rank 0, while the other workers wait and then read the verified
    cached file), or freshly initialised. Starting weights for another head or input are an explicit
    transfer (logged). Returns ``(net, SHA-256 of the starting weights or None)``."""
    from .. import hub
    from ..hub.builder import build_from_checkpoint
    from ..hub.download import sha256_of

    architecture = dict(in_channels=options.in_channels, n_classes=options.n_classes,
                        deep_supervision=config.deep_supervision, cgm=config.cgm)
    if config.checkpoint is not None:
        source = Path(config.checkpoint)
        return build_from_checkpoint(source, transfer=True, **architecture), sha256_of(source)
    if not config.pretrained:
        return hub.create_network("unet3plus", **architecture), None
    if dist.is_writer:
        source = hub.pretrained_checkpoint(hub.LITS2017, progress=config.progress)
    dist.barrier()
    if not dist.is_writer:
        source = hub.pretrained_checkpoint(hub.LITS2017, progress=False)
    net = build_from_checkpoint(source, config=hub.published_model_config(), transfer=True, **architecture)
    return net, hub.LITS2017.sha256


class Trainer:
    """One fine-tuning run; :meth:`fit` does it all. Everything is checked before the first step."""

    def __init__(self, train_data: SegmentationDataset, val_data: Optional[SegmentationDataset],
                 config: TrainConfig, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.dist = Distributed.setup(config.distributed)
        self.log = log if self.dist.is_writer else (lambda message: None)
        if val_data is None:
            train_data, val_data = split_train_val(train_data, config.val_split, config.seed, config.group_pattern)
        self.train_data, self.val_data = train_data, val_data
        self.options = train_data.options
        self._check_inputs()
        self._build()

    # -- set-up -----------------------------------------------------------------------------------
    def _check_inputs(self) -> None:
        config, options = self.config, self.options
        val_options = self.val_data.options
        if (val_options.n_classes, val_options.in_channels) != (options.n_classes, options.in_channels):
            raise DatasetError("the validation data was prepared for n_classes/in_channels "
                               f"{val_options.n_classes}/{val_options.in_channels} but the training data for "
                               f"{options.n_classes}/{options.in_channels}; use the same options for both")
        check_batch_size(len(self.train_data), config.batch_size, self.dist.world_size)
        if config.class_names is not None and len(config.class_names) != options.n_labels:
            raise InputError(f"got {len(config.class_names)} class name(s) for {options.n_labels} label values "
                             f"(background first); give {options.n_labels} names")
        if config.out_dir.exists() and not config.out_dir.is_dir():
            raise InputError(f"--out {config.out_dir} is a file, not a folder; choose a folder for the run")
        has_state = (config.out_dir / RESUME).exists()  # the run state: a folder holds a run exactly when it is there
        if config.resume and not has_state and not _run_files(config.out_dir):
            raise ResumeError(f"nothing to resume in {config.out_dir} (no {RESUME}); start without --resume")
        if has_state and not config.resume:
            raise ResumeError(f"{config.out_dir} already holds a run ({RESUME}); pass --resume to continue it, or "
                              "choose another --out folder")

    def _build(self) -> None:
        import mindspore as ms

        from ..losses import UNet3PlusLoss, build_loss

        config, options = self.config, self.options
        if ms.get_context("device_target") == "CPU":
            configure_memory_pool()  # before the network allocates anything
        ms.set_seed(config.seed)  # identical initial weights on every worker
        self.net, self.base_weights_sha256 = build_network(options, config, self.dist)
        self.load_report = self.net.load_report
        if self.load_report is not None:
            self.log(self.load_report.summary())
            self.log(describe_head_transfer(self.load_report, options, config.class_names))
        if config.freeze_encoder:
            self.net.freeze_encoder()
        self.loss_name = config.loss or ("bce_dice" if options.n_classes == 1 else "dice_ce")
        self.segmentation_loss = build_loss(self.loss_name)
        loss = UNet3PlusLoss(self.segmentation_loss, self.net.train_output_names,
                             config.deep_supervision_weights, config.cgm_weight)
        # nn.Adam also builds a FusedSparseAdam primitive for sparse gradients, which MindSpore 2.10 logs as
        # deprecated; this network's gradients are dense, so that primitive never runs: drop just that line.
        with without_mindspore_message("'FusedSparseAdam' is deprecated"):
            self.optimizer = nn.Adam(self.net.trainable_params(), learning_rate=config.lr,
                                     weight_decay=config.weight_decay)
        self.train_step = nn.TrainOneStepCell(_NetWithLoss(self.net, loss), self.optimizer)
        train_step = self.train_step

        # The train step runs as one compiled graph; validation's eval-mode net(x) compiles too (networks/compiled.py).
        @ms.jit
        def run_step(image, label):
            return train_step(image, label)

        self._run_step = run_step
        self._compiled = False

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        config, out = self.config, self.config.out_dir
        state = {"epoch": 0, "best_dice": None, "best_epoch": None, "bad_epochs": 0, "history": []}
        if config.resume and (out / RESUME).exists():
            state = load_resume_state(self.train_step, out / RESUME, check=self._check_resumable)
            self._apply_learning_rate()
            self.log(f"resuming after epoch {state['epoch']} of {config.epochs}")
        elif self.dist.is_writer:
            if _run_files(out):
                self.log(f"no run state ({RESUME}) in {out}: the run there stopped before its first epoch ended; "
                         f"starting from epoch 1 and replacing {', '.join(_run_files(out))}")
            self._write_config()
        if self.dist.is_writer:
            finish_commit(out, state.get("pending", []))
            remove_stale_partials(out)  # left by a killed run; final files are never half-written
        stopped_early = self._patience_exhausted(state)
        while not stopped_early and state["epoch"] < config.epochs:
            epoch = state["epoch"]
            started = time.perf_counter()
            train_loss = self._train_epoch(epoch)
            self.dist.average_batchnorm_statistics(self.net)
            val = self.validate()
            row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
                   "val_dice": val["mean_dice"], "val_iou": val["mean_iou"],
                   "val_global_dice": val["global_dice"], "lr": config.lr,
                   "seconds": time.perf_counter() - started}
            improved = self._update_best(state, row)
            state["epoch"] = epoch + 1
            state["history"].append(row)
            if self.dist.is_writer:
                self._write_epoch(state, improved)
            val_loss = "" if math.isnan(val["loss"]) else f", val loss {val['loss']:.4f}"  # volume runs score masks only
            self.log(f"epoch {epoch + 1}/{config.epochs}: train loss {train_loss:.4f}{val_loss}, "
                     f"val Dice {val['mean_dice']:.4f}{' (best)' if improved else ''}, {row['seconds']:.1f} s")
            if len(val.get("mean_dice_per_class", ())) > 1:  # a scripted validate() may leave it out
                self.log(f"  val Dice per class: {per_class_text(val['mean_dice_per_class'], self.options, config.class_names)}")
            stopped_early = self._patience_exhausted(state) and state["epoch"] < config.epochs
        if stopped_early:
            self.log(f"early stopping: no better validation Dice for {config.patience} epoch(s)")
        return TrainResult(out, state["epoch"], state["best_epoch"],
                           float("nan") if state["best_dice"] is None else state["best_dice"],
                           stopped_early, state["history"], self.dist.is_writer)

    def _train_epoch(self, epoch: int) -> float:
        import mindspore as ms

        config = self.config
        ms.set_seed(config.seed * 100003 + epoch)  # dropout etc.: the same whether resumed or not
        loader = make_loader(self.train_data, config.batch_size, epoch=epoch, shuffle=True,
                             augmentation=(config.augmentation or Augmentation()) if config.augment else None,
                             seed=config.seed,
                             num_workers=config.num_workers, num_shards=self.dist.world_size,
                             shard_id=self.dist.rank, drop_remainder=True)
        self.net.set_train(True)
        self.train_step.set_train(True)
        losses = []
        if not self._compiled:  # the first step is silent for tens of seconds otherwise
            self.log(COMPILING)
        with progress_bar(loader.get_dataset_size(), f"epoch {epoch + 1}/{config.epochs}",
                          enabled=config.progress and self.dist.is_writer) as bar:
            for image, label in loader.create_tuple_iterator(num_epochs=1):
                started = time.perf_counter()
                loss = float(self._run_step(image, label).asnumpy())
                if not math.isfinite(loss):
                    raise self._stopped(f"the training loss became {loss} in epoch {epoch + 1}, step {len(losses) + 1}")
                losses.append(loss)
                if not self._compiled:  # compiling the step left freed heap pages behind: hand them back
                    release_free_heap()
                    self._compiled = True
                    with bar.external_write_mode():
                        self.log(f"compiled and ran the training step in {time.perf_counter() - started:.1f} s")
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
        return float(self.dist.all_reduce_mean(np.array([np.mean(losses)]))[0])

    def validate(self) -> Dict[str, Any]:
        """Loss and the fields of ``SegmentationMetrics.result()`` (hard Dice/IoU of the foreground classes,
        MONAI conventions) on the validation set; volume data is scored per case in 3-D instead
        (``volume_validation``; no loss)."""
        from ..metrics import SegmentationMetrics
        from ..transforms.postprocess import labels_from_logits

        self.net.set_train(False)
        if hasattr(self.val_data, "read_case"):
            from .volume_validation import validate_cases

            return validate_cases(self.net, self.val_data, self.config.batch_size)
        metrics = SegmentationMetrics(self.options.n_labels, include_background=False)
        batch = min(self.config.batch_size, len(self.val_data))
        loader = make_loader(self.val_data, batch, shuffle=False, augmentation=None, drop_remainder=False,
                             num_workers=self.config.num_workers)
        losses, weights = [], []
        for image, label in loader.create_tuple_iterator(num_epochs=1):
            logits = self.net(image)
            losses.append(float(self.segmentation_loss(logits, label).asnumpy()))
            weights.append(image.shape[0])
            metrics.update(labels_from_logits(logits.asnumpy()), label.asnumpy())
        return dict(asdict(metrics.result()), loss=float(np.average(losses, weights=weights)))

    # -- bookkeeping ------------------------------------------------------------------------------
    def _patience_exhausted(self, state: Dict[str, Any]) -> bool:
        return self.config.patience is not None and state["bad_epochs"] >= self.config.patience

    def _update_best(self, state: Dict[str, Any], row: Dict[str, float]) -> bool:
        dice = row["val_dice"]
        best = state["best_dice"]
        improved = math.isfinite(dice) and (best is None or dice > best + self.config.min_delta)
        if improved:
            state["best_dice"], state["best_epoch"], state["bad_epochs"] = dice, row["epoch"], 0
        else:
            state["bad_epochs"] += 1
        return improved

    def _signature(self) -> Dict[str, Any]:
        """Every setting that shapes the run, as JSON values (what a resume compares)."""
        config, options = self.config, self.options
        return {"n_classes": options.n_classes, "in_channels": options.in_channels,
                "deep_supervision": config.deep_supervision, "cgm": config.cgm,
                "freeze_encoder": config.freeze_encoder, "seed": config.seed, "world_size": self.dist.world_size,
                "val_split": config.val_split, "group_pattern": config.group_pattern,
                "data_options": json.loads(json.dumps(asdict(options), default=str)),
                "train_images": _fingerprint(self.train_data.names), "val_images": _fingerprint(self.val_data.names),
                "lr": config.lr, "batch_size": config.batch_size, "loss": self.loss_name,
                "weight_decay": config.weight_decay, "augment": config.augment, "patience": config.patience,
                "min_delta": config.min_delta, "cgm_weight": config.cgm_weight,
                "deep_supervision_weights": (None if config.deep_supervision_weights is None
                                             else list(config.deep_supervision_weights))}

    def _check_resumable(self, state: Dict[str, Any]) -> None:
        """Refuse a resume whose settings differ, listing each change; ``allow_setting_changes`` applies (and
        logs) the hyperparameters among them. Runs before any parameter is loaded."""
        saved = state.get("signature", {})
        changes = {k: (saved.get(k), v) for k, v in self._signature().items() if saved.get(k) != v}
        fixed = {k: change for k, change in changes.items() if k not in RESUMABLE_CHANGES}
        listed = lambda items: "; ".join(f"{k}: was {old}, now {new}" for k, (old, new) in items.items())  # noqa: E731
        if fixed:
            raise ResumeError(f"cannot resume with different network, data or split settings ({listed(fixed)}); use "
                              "the interrupted run's settings, or start a new run in another --out folder")
        if changes and not self.config.allow_setting_changes:
            raise ResumeError(f"cannot resume with changed settings ({listed(changes)}); use the interrupted run's "
                              "settings, or pass --allow-setting-changes to continue with the new ones")
        if changes:
            self.log(f"resuming with changed settings (--allow-setting-changes): {listed(changes)}")

    def _apply_learning_rate(self) -> None:
        """The optimizer state brings its saved learning rate back: the configured one is what runs (and is logged)."""
        import mindspore as ms

        self.optimizer.learning_rate.set_data(ms.Tensor(self.config.lr, self.optimizer.learning_rate.dtype))

    def _stopped(self, what: str) -> TrainingStopped:
        out = self.config.out_dir
        kept = (f"{out / LAST} and {out / BEST} keep the last good weights" if (out / LAST).exists()
                else "no epoch had finished, so nothing was saved")
        return TrainingStopped(f"{what}; training stopped and {kept}. Lower the learning rate (--lr) or check the "
                               "data, then continue with --resume --allow-setting-changes (or start over)")

    def _write_epoch(self, state: Dict[str, Any], improved: bool) -> None:
        out = self.config.out_dir
        bad = [param.name for param in self.net.get_parameters() if not np.isfinite(param.asnumpy()).all()]
        if bad:
            raise self._stopped(f"{len(bad)} weight(s) became NaN or infinite in epoch {state['epoch']} (e.g. "
                                f"{', '.join(bad[:3])}); they were not saved")
        model_config = self.net.model_config = self.model_config(state)  # predict(trainer.net, ...) feeds it right
        commit_epoch(self.net, self.train_step, dict(state, signature=self._signature()), out, improved,
                     model_config)
        write_metrics_csv(state["history"], out / METRICS_CSV)  # derived from the state: rewritten, never appended
        plot_curves(state["history"], out / CURVES_PNG)

    def model_config(self, state: Dict[str, Any]):
        """What the checkpoints carry: the architecture, the data pipeline's input preparation, labels and
        provenance (so ``create_network(checkpoint=...)`` and ``predict`` need nothing else)."""
        from ..hub.model_config import Architecture, InputConfig, ModelConfig, default_class_names, provenance

        config, options = self.config, self.options
        best = None if state["best_dice"] is None else {"name": "val_dice", "value": round(state["best_dice"], 6),
                                                         "epoch": state["best_epoch"]}
        data = {"train_images": len(self.train_data), "val_images": len(self.val_data),
                "image_size": list(self.train_data.spatial_size), "loss": self.loss_name}
        return ModelConfig(
            architecture=Architecture(options.in_channels, options.n_classes, config.deep_supervision, config.cgm),
            input=(self._volume_input_config() if hasattr(options, "input_config") else  # volumes: preset / HU window
                   InputConfig(normalize=options.normalize, size=tuple(options.size) if options.size else None,
                               repeat_grayscale=options.repeat_grayscale)),
            label_map={int(k): int(v) for k, v in options.label_map.items()} if options.label_map else None,
            class_names=tuple(config.class_names or getattr(options, "class_names", None)
                              or default_class_names(options.n_classes)),
            provenance=provenance(base_weights_sha256=self.base_weights_sha256, epochs=state["epoch"],
                                  best_metric=best, data=data))

    def _volume_input_config(self):
        """The volume options' input config with the training cases' in-plane spacing range, read once from their
        label NIfTI headers (on the CT's grid, which the up-front check made sure of) in the training orientation."""
        import dataclasses

        if not hasattr(self, "_spacing_range"):
            from .._optional import require
            from ..io.nifti import nifti_spacing, to_training_orientation
            from ..transforms.spacing import spacing_range

            nibabel = require("nibabel", "nifti", "Reading NIfTI volumes")
            headers = (nibabel.load(str(self.train_data.cases[index].case.labels))
                       for index in self.train_data.case_indices())
            # a 1-voxel stand-in: only the spacing of the training orientation is wanted, not the voxels
            self._spacing_range = spacing_range(
                to_training_orientation(nibabel, np.zeros((1, 1, 1)), image.affine, nifti_spacing(image))[2]
                for image in headers)
        return dataclasses.replace(self.options.input_config(), spacing_range=self._spacing_range)

    def _write_config(self) -> None:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        config.update(loss=self.loss_name, n_classes=self.options.n_classes, in_channels=self.options.in_channels,
                      train_images=len(self.train_data), val_images=len(self.val_data),
                      world_size=self.dist.world_size)
        with atomic_path(self.config.out_dir / CONFIG_JSON) as temporary:
            temporary.write_text(json.dumps(config, indent=2, default=str))


RESUMABLE_CHANGES = frozenset({"lr", "batch_size", "loss", "weight_decay", "augment", "patience", "min_delta",
                               "cgm_weight", "deep_supervision_weights"})


def _fingerprint(names: Sequence[str]) -> str:
    """Which files: their count and a digest of their names (so a changed split or data set is noticed)."""
    return f"{len(names)} file(s) #{hashlib.sha256(chr(10).join(sorted(names)).encode()).hexdigest()[:10]}"


def _run_files(out_dir: Path) -> List[str]:
    """Files a run writes, present without a run state when it was killed before its first commit."""
    names = (BEST, LAST, METRICS_CSV, CURVES_PNG, CONFIG_JSON)
    return [name for name in names if (out_dir / name).exists()] if out_dir.is_dir() else []


class _NetWithLoss(nn.Cell):
    """The network followed by the loss of whatever it returns in training mode."""

    def __init__(self, net: nn.Cell, loss: nn.Cell) -> None:
        super().__init__(auto_prefix=False)  # keep the network's parameter names unprefixed
        self.net, self.loss = net, loss

    def construct(self, image, label):
        return self.loss(self.net(image), label)


def train(train_data: SegmentationDataset, val_data: Optional[SegmentationDataset], config: TrainConfig,
          log: Callable[[str], None] = print) -> TrainResult:
    """Fine-tune and return the result; ``val_data=None`` splits ``config.val_split`` of the patient groups off."""
    return Trainer(train_data, val_data, config, log).fit()
