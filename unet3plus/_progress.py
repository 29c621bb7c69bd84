"""The one progress bar (training epochs, predicted slices, downloaded bytes)."""
from __future__ import annotations

import sys
from typing import Any, Optional


def progress_bar(total: Optional[int], description: str, *, enabled: bool, unit: str = "it", **options: Any):
    """A tqdm bar on stderr that is erased when done; when not ``enabled`` a silent tqdm, so callers never
    branch on it (``update``, ``set_postfix``, ``close`` and ``with`` work either way)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=not enabled, **options)
