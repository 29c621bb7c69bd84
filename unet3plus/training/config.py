"""What a fine-tuning run is asked to do (``TrainConfig``, the CLI flags of ``unet3plus train``) and what it
reports back (``TrainResult``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..data import Augmentation
from ..errors import InputError
from .checkpoints import BEST, LAST


@dataclass
class TrainConfig:
    """Options of a fine-tuning run (the CLI flags of ``unet3plus train`` map onto these).

    Attributes:
        out_dir: where checkpoints, ``metrics.csv``, ``curves.png`` and ``train_config.json`` go.
        loss: ``bce_dice`` (published; default for binary), ``dice_ce`` (default for several classes)
            or ``hybrid`` (focal + MS-SSIM + IoU).
        pretrained: start from the published LiTS2017 weights (downloaded once, verified).
        checkpoint: start from this local checkpoint instead (either format); ``pretrained`` is ignored.
        val_split: fraction of patient groups held out when no validation set is given.
        group_pattern: regex whose first group is the patient/group id in file names (default: the name
            without its trailing slice number).
        patience: stop after this many epochs without a better validation Dice (None: never).
        seed: fixes initialisation, sample order, augmentation and dropout (resume-safe).
        distributed: None detects an ``msrun`` launch; True/False force it.
        allow_setting_changes: on ``resume``, apply (and log) changed hyperparameters (``RESUMABLE_CHANGES``)
            instead of refusing them; changes to the network, data or split are always refused.
        augmentation: which augmentations (default ``Augmentation()``); ``augment=False`` turns them off.
        class_names: one name per label value (background first), stored in the checkpoints' model config.
    """

    out_dir: Union[str, Path]
    epochs: int = 50
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: Optional[str] = None
    deep_supervision: bool = False
    deep_supervision_weights: Optional[Sequence[float]] = None
    cgm: bool = False
    cgm_weight: float = 1.0
    pretrained: bool = False
    checkpoint: Optional[Union[str, Path]] = None
    freeze_encoder: bool = False
    val_split: float = 0.2
    group_pattern: Optional[str] = None
    patience: Optional[int] = None
    min_delta: float = 0.0
    seed: int = 0
    augment: bool = True
    augmentation: Optional[Augmentation] = None
    num_workers: int = 1
    resume: bool = False
    progress: bool = True
    distributed: Optional[bool] = None
    allow_setting_changes: bool = False
    class_names: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise InputError(f"the learning rate must be > 0, got {self.lr}")
        if self.patience is not None and self.patience < 1:
            raise InputError(f"patience must be >= 1 (or None to never stop early), got {self.patience}")


@dataclass
class TrainResult:
    out_dir: Path
    epochs_run: int
    best_epoch: Optional[int]
    best_dice: float
    stopped_early: bool
    history: List[Dict[str, float]] = field(default_factory=list)
    is_writer: bool = True  # False on data-parallel workers other than rank 0 (they write nothing)

    @property
    def best_checkpoint(self) -> Path:
        return self.out_dir / BEST

    @property
    def last_checkpoint(self) -> Path:
        return self.out_dir / LAST
