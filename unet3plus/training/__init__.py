"""Fine-tuning: :func:`train` with a :class:`TrainConfig` (``unet3plus train`` on the command line)."""
from .checkpoints import BEST, LAST, RESUME, ResumeError, TrainingStopped, load_resume_state, save_network
from .distributed import Distributed, launched_by_msrun
from .history import plot_curves, read_metrics_csv, write_metrics_csv
from .trainer import CONFIG_JSON, CURVES_PNG, METRICS_CSV, TrainConfig, Trainer, TrainResult, split_train_val, train

__all__ = [
    "BEST", "CONFIG_JSON", "CURVES_PNG", "Distributed", "LAST", "METRICS_CSV", "RESUME", "ResumeError",
    "TrainConfig", "TrainResult", "Trainer", "TrainingStopped", "launched_by_msrun", "load_resume_state",
    "plot_curves", "read_metrics_csv", "save_network", "split_train_val", "train",
    "write_metrics_csv",
]
