"""Log lines about classes: per-class validation scores by name, and whether the head was transferred."""
from __future__ import annotations

from typing import List, Optional, Sequence


def class_names(options, configured: Optional[Sequence[str]] = None) -> List[str]:
    """Names of the scored (foreground) classes: ``--class-names`` (``configured``, background first), else a
    volume dataset's ``classes``, else ``class k``."""
    if configured and len(configured) >= options.n_labels:
        return list(configured[1:options.n_labels])
    names = getattr(options, "classes", None)
    return list(names) if names else [f"class {k}" for k in range(1, options.n_labels)]


def per_class_text(scores: Sequence[float], options, configured: Optional[Sequence[str]] = None) -> str:
    return ", ".join(f"{name} {score:.4f}" for name, score in zip(class_names(options, configured), scores))


def describe_head_transfer(report, options, configured: Optional[Sequence[str]] = None) -> str:
    """One line saying whether the output head came from the checkpoint or starts fresh (a head transfer)."""
    fresh_head = [name for name in report.newly_initialised if name.startswith("outconv")]
    if not fresh_head:
        return f"head loaded from the checkpoint ({options.n_classes} output channel(s))"
    return (f"head transfer: the checkpoint's head does not fit {options.n_classes} output channel(s) "
            f"({', '.join(['background'] * (options.n_classes > 1) + class_names(options, configured))}), so "
            f"{', '.join(fresh_head)} start(s) fresh; every other layer starts from the checkpoint")
