"""Which installed fp32 engine runs an ONNX export on this machine: timed once, then remembered.

ONNX Runtime and OpenVINO rank differently on different CPUs (OpenVINO fp32 was 1.06-1.11x ONNX Runtime on
2 AMD EPYC cores with AVX-512; ``benchmarks/bench_engines.py``), so ``predict``'s cropped strategies time
both on the first batch of a crop shape and keep the faster. The choice is written to
``<cache>/onnx/engine-choices/`` (removed with its export), keyed by the export's SHA-256, the CPU (model,
instruction sets, CPUs this process may use) and the engines' versions: later runs on this machine use the
same engine without timing again, so the same CT gives the same mask run after run. A cache that cannot be
written only means timing again next time.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from .._atomic import atomic_path
from .._runtime import cpu_model, isa_flags
from .onnx_cache import engine_choice_path

logger = logging.getLogger(__name__)

ROUNDS = 3  # calls per engine, interleaved; the first is a warm-up
Run = Callable[..., np.ndarray]


def machine_key(export_sha256: str, engines: Mapping[str, str]) -> Dict[str, Any]:
    """What a choice depends on: the export, this CPU and the engines' versions (``engines``: name -> version)."""
    return {"export_sha256": export_sha256, "cpu": cpu_model(), "isa": isa_flags(),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "engines": dict(sorted(engines.items()))}


def _choice_path(key: Mapping[str, Any], cache_dir: Any) -> Path:
    machine = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return engine_choice_path(key["export_sha256"], machine, cache_dir)


def remembered_engine(key: Mapping[str, Any], cache_dir: Any = None) -> Optional[str]:
    """The engine chosen before for ``key``, or None (never chosen, or a record that does not hold this key)."""
    try:
        with open(_choice_path(key, cache_dir)) as record:
            saved = json.load(record)
    except (OSError, ValueError):
        return None
    return saved.get("engine") if isinstance(saved, dict) and saved.get("key") == key else None


def time_engines(runs: Mapping[str, Run], *inputs: np.ndarray) -> Tuple[str, Dict[str, float], np.ndarray]:
    """``(fastest, best seconds of each, the fastest's output for inputs)``: ``ROUNDS`` calls each, interleaved
    so that a busy moment of the machine falls on both, the first call of each not counted."""
    seconds: Dict[str, list] = {name: [] for name in runs}
    outputs: Dict[str, np.ndarray] = {}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            began = time.perf_counter()
            outputs[name] = run(*inputs)
            seconds[name].append(time.perf_counter() - began)
    best = {name: min(times[1:]) for name, times in seconds.items()}
    fastest = min(best, key=best.__getitem__)
    return fastest, best, outputs[fastest]


def choose_engine(makers: Mapping[str, Callable[[], Optional[Run]]], key: Mapping[str, Any], *inputs: np.ndarray,
                  cache_dir: Any = None, what: str = "this export") -> Tuple[str, Run, np.ndarray]:
    """``(name, run, its output for inputs)`` of the engine to use: the one remembered for ``key``, else the
    fastest of those ``makers`` can make (a maker returns None where its engine cannot run the export),
    timed now on ``inputs`` and remembered. The first maker is the fallback and must succeed."""
    remembered = remembered_engine(key, cache_dir)
    if remembered in makers:
        run = makers[remembered]()
        if run is not None:
            return remembered, run, run(*inputs)
    runs = {name: run for name, run in ((name, make()) for name, make in makers.items()) if run is not None}
    if len(runs) == 1:
        (name, run), = runs.items()
        return name, run, run(*inputs)
    name, seconds, output = time_engines(runs, *inputs)
    logger.info("fp32 engine for %s on this CPU: %s (%s per call; timed once, remembered)", what, name,
                ", ".join(f"{engine} {1000 * s:.0f} ms" for engine, s in seconds.items()))
    record = {"key": dict(key), "engine": name, "seconds": seconds,
              "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with contextlib.suppress(OSError):  # a read-only cache: the same timing next time
        with atomic_path(_choice_path(key, cache_dir)) as temporary:
            temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    return name, runs[name], output
