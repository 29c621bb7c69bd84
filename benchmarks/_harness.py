"""Run several backends side by side: one worker process each, timed calls interleaved round-robin.

Interleaving matters on a shared machine: load from other processes then hits every rival alike, and
the printed ratios stay meaningful even when absolute times drift. A short pause between calls lets the
previous worker's OpenMP threads stop spinning before the next worker starts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median  # noqa: E402

WORKER = Path(__file__).resolve().parent / "_worker.py"
ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"


@dataclass
class Spec:
    """A backend to run: a label, worker arguments, and environment variables to set (None = unset)."""

    label: str
    args: List[str]
    env: Dict[str, Optional[str]] = field(default_factory=dict)
    check_logits: bool = True


class Worker:
    def __init__(self, spec: Spec, common_args: Sequence[str], log_dir: Path) -> None:
        self.spec = spec
        env = {k: v for k, v in os.environ.items() if k != ISA_VARIABLE}  # out of the box unless set below
        for key, value in spec.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        self.log_path = log_dir / (spec.label.replace(" ", "_").replace("/", "_") + ".log")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, str(WORKER), *spec.args, *common_args], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                        text=True, bufsize=1)
        self.setup: dict = {}
        self.times: List[float] = []
        self.peak_rss = 0

    def _expect(self, keyword: str) -> str:
        for line in self.process.stdout:
            if line.startswith("@@" + keyword):
                return line[len("@@" + keyword):].strip()
        self._log.flush()
        tail = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"worker {self.spec.label!r} ended without '{keyword}':\n{tail}")

    def _send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def wait_ready(self) -> None:
        self.setup = json.loads(self._expect("ready"))

    def run(self) -> float:
        self._send("run")
        return float(self._expect("time"))

    def save_logits(self, path: Path) -> np.ndarray:
        self._send(f"logits {path}")
        self._expect("ok")
        return np.load(path)

    def close(self) -> None:
        if self.process.poll() is None:
            self._send("quit")
            self.peak_rss = int(self._expect("rss"))
            self.process.wait(timeout=60)
        self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def run_side_by_side(specs: Sequence[Spec], common_args: Sequence[str], rounds: int, warmup: int,
                     reference_label: Optional[str] = None, tolerance: float = 1e-3,
                     pause_s: float = 0.3, concurrent_start: bool = True) -> Dict[str, Worker]:
    """Start every worker, check logits against ``reference_label``'s, then time interleaved rounds.

    Returns the closed workers (``times``, ``peak_rss``, ``setup``). Raises if any backend's logits differ
    from the reference by more than ``tolerance``.
    """
    with tempfile.TemporaryDirectory(prefix="unet3plus-bench-") as scratch:
        scratch_dir = Path(scratch)
        workers: List[Worker] = []
        try:
            for spec in specs:
                workers.append(Worker(spec, common_args, scratch_dir))
                if not concurrent_start:
                    workers[-1].wait_ready()
            if concurrent_start:
                for worker in workers:
                    worker.wait_ready()
            outputs = {w.spec.label: w.save_logits(scratch_dir / f"logits{i}.npy") for i, w in enumerate(workers)
                       if w.spec.check_logits}
            reference = outputs[reference_label or specs[0].label]
            for label, logits in outputs.items():
                difference = float(np.abs(logits - reference).max())
                print(f"  logits check: {label:<40} max |diff| vs {reference_label or specs[0].label}: {difference:.2e}",
                      flush=True)
                if not difference <= tolerance:
                    raise AssertionError(f"{label} logits differ by {difference:.3g} > {tolerance}")
            for worker in workers:
                for _ in range(warmup):
                    worker.run()
            for round_index in range(rounds):
                order = workers[round_index % len(workers):] + workers[:round_index % len(workers)]
                for worker in order:
                    time.sleep(pause_s)
                    worker.times.append(worker.run())
            for worker in workers:
                worker.close()
        except BaseException:
            for worker in workers:
                worker.kill()
            raise
        return {w.spec.label: w for w in workers}


def format_table(results: Dict[str, Worker], batch: int, baseline: str, floor_ms: Optional[float]) -> str:
    """Markdown rows: median ms/img, img/s, ratio to ``baseline`` and to the FLOP floor, peak RSS."""
    base = median(results[baseline].times) / batch
    lines = [f"| backend | batch | ms/img (median of {len(results[baseline].times)}) | img/s | vs {baseline} "
             f"| vs floor | peak RSS GiB |", "|---|---|---|---|---|---|---|"]
    for label, worker in results.items():
        per_image = median(worker.times) / batch
        floor = f"{per_image * 1e3 / floor_ms:.2f}x" if floor_ms else "-"
        lines.append(f"| {label} | {batch} | {per_image * 1e3:.0f} | {1 / per_image:.2f} | "
                     f"{per_image / base:.2f}x | {floor} | {worker.peak_rss / 2**30:.2f} |")
    return "\n".join(lines)
