"""Scoring against labels as the LiTS benchmark does: masks that exist (:func:`score_masks`) or a model's
predictions (:func:`evaluate`), and the tables, CSV, JSON and plot of the result."""
from .evaluate import evaluate, pair_predictions, score_masks
from .scores import Evaluation

__all__ = ["Evaluation", "evaluate", "pair_predictions", "score_masks"]
