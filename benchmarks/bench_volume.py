"""A whole CT end to end: time, peak memory and pipeline overhead per backend (each run a fresh process).

Why: ``predict`` streams a volume through the network a batch at a time and keeps only the uint8 mask, so a
whole CT should cost about the network's forward time, and memory should grow with the int16 input and its
mask only. This writes a synthetic int16 NIfTI CT (``--size`` x ``--size`` x ``--slices``, gzip) and, for
each backend and slice count, runs in a new process: read the file, predict, write the NIfTI mask and the
overlay PNG. It prints the end-to-end wall time, the time spent inside the forward calls during that same
run (a wrapper around the backend: same slices, same batch), their ratio, and the process's peak RSS
(``VmHWM``). With two or more slice counts it also prints peak-RSS growth per slice against the int16
input + uint8 mask (``--size``\\ :sup:`2` x 3 bytes a slice).

    python benchmarks/bench_volume.py [--slices 300] [--size 512] [--batch N] [--backends mindspore onnxruntime]
    python benchmarks/bench_volume.py --slices 40 80        # growth per slice from two sizes
    python benchmarks/bench_volume.py --slices 100 --backends cli   # the command line against pure forward

Backends: ``mindspore`` is the normal ``predict`` path (BatchNorm-folded network, GRAPH mode); ``onnxruntime``
runs an ``.onnx`` file exported here with ``unet3plus.export.export_network`` (fixed batch ``--batch``).
Weights are the default initialisation with a fixed seed: the architecture of the published weights, and the
speed does not depend on the values. ``--isolated-forward`` also times the forward calls alone in another
process (batches prepared outside the timing), as a cross-check of the in-run forward time.

``cli`` times what a user types, ``unet3plus predict CT --checkpoint CKPT --out DIR`` (default backend: ONNX
Runtime on the cached export), as the whole command's wall time, imports and checkpoint loading included,
against ONNX Runtime's forward calls alone on the cached file and the same slices (another process). A first
run fills the ONNX cache (a fresh ``UNET3PLUS_HOME``) and is reported apart.

``--modes exact,default,fast`` compares ``predict``'s strategies (issue 22, ``docs/whole-ct.md``) instead: on a
synthetic abdominal CT (body 68% of the field's width, fat, spine, a couch, air; liver with tumours in about a
third of the slices) each strategy runs end to end in its own process (read, predict with the automatic
backend, write) and the table gives its time, its ratio to ``exact``, its peak RSS and its Dice against
``exact`` per class. The network is fine-tuned here first (``unet3plus train --volumes`` on such CTs; kept in
``--work`` so that reruns skip it), so the agreement is that of a network that has learned something. The
ONNX exports (the whole slice's and the crop shape's) are made by a warm-up run on a short CT of the same
geometry before the timed runs; their one-time cost is printed apart.

    python benchmarks/bench_volume.py --modes exact,default,fast --slices 300 --size 512 --work /tmp/bench-wct
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, cpu_name, isa_flags  # noqa: E402  (also puts the checkout on sys.path)

CHILD = r"""
import json, sys, time
wall_start = time.perf_counter()
import numpy as np
import unet3plus
from unet3plus.runtime import InferenceBackend, create_backend
from unet3plus import predict
from unet3plus.io import read_input, write_prediction
from unet3plus.runtime import forward

def status(key):
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1]) * 1024

class Timed(InferenceBackend):
    "Delegates to a backend, adding up the seconds spent inside its forward calls."
    def __init__(self, inner):
        self.inner, self.fixed_shape, self.seconds, self.calls = inner, inner.fixed_shape, 0.0, 0
    def prepare(self, n_batches):
        self.inner.prepare(n_batches)
    def __call__(self, batch):
        start = time.perf_counter()
        out = self.inner(batch)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out

task = json.loads(sys.argv[1])
if task["backend"] == "mindspore":
    import mindspore as ms
    ms.set_seed(0)
    model = unet3plus.UNet3Plus()
    options = {"mode": "graph", "optimize": True}   # what predict passes for a network, graph compiled
else:
    model, options = task["onnx"], {}
setup_s = time.perf_counter() - wall_start
rss_before = status("VmRSS")
start = time.perf_counter()
runner = Timed(create_backend(model, task["backend"], **options))
backend_s = time.perf_counter() - start
if task["what"] == "end-to-end":
    prediction = predict(runner, read_input(task["volume"]), batch_size=task["batch"])
    written = write_prediction(prediction, task["out"])
    voxels = int(prediction.mask.size)
else:  # forward calls only, on the same batches predict builds (prepared outside the timing)
    from unet3plus.runtime.predict import padded_size, slice_source
    from unet3plus.transforms.presets import get_preset
    source = read_input(task["volume"])
    n, (height, width), prepare, _ = slice_source(source, get_preset("lits2017"))
    size = padded_size(height, width, runner.fixed_shape)
    runner.prepare(-(-n // task["batch"]))
    runner.seconds = 0.0
    for first in range(0, n, task["batch"]):
        chunk = prepare(first, min(first + task["batch"], n))
        padded = np.zeros((task["batch"], 3) + size, np.float32)
        padded[:len(chunk), :, :height, :width] = chunk
        forward(runner, padded)
    voxels = n * height * width
end_to_end_s = time.perf_counter() - start
print("@@" + json.dumps({"setup_s": setup_s, "end_to_end_s": end_to_end_s, "forward_s": runner.seconds,
                         "calls": runner.calls, "backend_s": backend_s, "peak_rss": status("VmHWM"),
                         "rss_before": rss_before, "voxels": voxels}))
"""


def synthetic_ct(path: Path, size: int, slices: int, seed: int = 0) -> None:
    """An int16 NIfTI CT: air around an elliptic body (soft tissue), a brighter liver-like blob, noise."""
    import nibabel

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size - 0.5
    body = (x / 0.42) ** 2 + (y / 0.32) ** 2 < 1
    volume = np.empty((size, size, slices), np.int16)  # X x Y x Z, as NIfTI stores it
    for z in range(slices):
        liver = ((x + 0.12) / 0.2) ** 2 + ((y - 0.02) / 0.15) ** 2 < 1 - (2 * z / max(slices - 1, 1) - 1) ** 2
        hu = np.where(body, 40.0, -1000.0) + np.where(liver, 20.0, 0.0) + rng.normal(0, 15, (size, size))
        volume[:, :, z] = np.rint(hu).astype(np.int16).T
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])  # L, P, S voxel axes: the training orientation
    nibabel.save(nibabel.Nifti1Image(volume, affine), str(path))


def run_child(task: dict) -> dict:
    start = time.perf_counter()
    paths = [str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(task)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{task['backend']} {task['what']} failed:\n{result.stderr[-3000:]}")
    line = next(line for line in reversed(result.stdout.splitlines()) if line.startswith("@@"))
    return dict(json.loads(line[2:]), process_s=time.perf_counter() - start)


def run_cli(volume: Path, checkpoint: Path, out: Path, home: Path, batch: int) -> float:
    """Seconds ``unet3plus predict`` takes on ``volume`` as a command, start to exit."""
    env = dict(os.environ, UNET3PLUS_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    env.pop("UNET3PLUS_BACKEND", None)
    command = [sys.executable, "-m", "unet3plus", "predict", str(volume), "--checkpoint", str(checkpoint),
               "--out", str(out), "--overwrite", "--no-progress", "--batch-size", str(batch)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"unet3plus predict failed:\n{result.stderr[-3000:]}")
    return seconds


def bench_cli(folder: Path, volume: Path, slices: int, batch: int) -> None:
    """The command line end to end against ONNX Runtime's pure forward time on the same slices."""
    import mindspore as ms

    import unet3plus

    checkpoint, home = folder / "seeded.ckpt", folder / "home"
    if not checkpoint.exists():
        ms.set_seed(0)
        ms.save_checkpoint(unet3plus.UNet3Plus(), str(checkpoint))
    first_s = run_cli(volume, checkpoint, folder / "out-cli", home, batch)
    end_to_end_s = run_cli(volume, checkpoint, folder / "out-cli", home, batch)
    exports = sorted((home / "onnx").glob("*.onnx"))
    if len(exports) != 1:
        raise RuntimeError(f"expected one cached ONNX export in {home / 'onnx'}, found {len(exports)}")
    forward_s = run_child({"backend": "onnxruntime", "onnx": str(exports[0]), "volume": str(volume),
                           "batch": min(batch, slices),  # predict never pads a batch beyond the slice count
                           "what": "forward"})["forward_s"]
    print(f"cli          {slices:>4} slices: unet3plus predict {end_to_end_s:.1f} s (first run, exporting to the "
          f"cache: {first_s:.1f} s), onnxruntime forward alone {forward_s:.1f} s: command / forward "
          f"{end_to_end_s / forward_s:.3f}x (goal <= 1.15x)", flush=True)


STRATEGY_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np
import unet3plus
from unet3plus import predict
from unet3plus.io import read_input, write_prediction
from unet3plus.runtime import create_backend

import logging

class Notes(logging.Handler):
    "Keeps what predict's strategies log (--fast's bf16 calibration line)."
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []
    def emit(self, record):
        self.lines.append(record.getMessage())

notes = Notes()
logging.getLogger("unet3plus.runtime.cropping").addHandler(notes)
logging.getLogger("unet3plus.runtime.cropping").setLevel(logging.INFO)
task = json.loads(sys.argv[1])
net = unet3plus.create_network("unet3plus", checkpoint=task["checkpoint"])
net.set_train(False)
backend = create_backend(net, "auto", mode="auto", optimize=True)   # what the CLI runs
began = time.perf_counter()
prediction = predict(backend, read_input(task["volume"]), strategy=task["strategy"])
write_prediction(prediction, task["out"], name="ct")
seconds = time.perf_counter() - began
np.save(task["out"] + "/mask.npy", prediction.mask)
peak = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) * 1024
print("@@" + json.dumps({"end_to_end_s": seconds, "peak_rss": peak, "process_s": time.perf_counter() - start,
                         "notes": notes.lines}))
"""


def abdominal_ct(size: int, slices: int, seed: int = 0):
    """``(hu int16 Z x H x W, labels uint8)``: air, a body 68% of the width (fat rim, soft tissue, spine), a
    couch below it, a liver (label 1, ~120 HU) with darker tumours (label 2, ~60 HU) in the middle third."""
    rng = np.random.default_rng(seed)
    y, x = (np.mgrid[:size, :size] + 0.5) / size - 0.5
    outer = (x / 0.34) ** 2 + (y / 0.25) ** 2 < 1
    inner = (x / 0.32) ** 2 + (y / 0.23) ** 2 < 1
    spine = (x / 0.035) ** 2 + ((y - 0.16) / 0.035) ** 2 < 1
    couch = (np.abs(y - 0.29) < 0.012) & (np.abs(x) < 0.46)
    hu = np.full((slices, size, size), -1000, np.int16)
    labels = np.zeros((slices, size, size), np.uint8)
    first, last = slices // 3, 2 * slices // 3
    tumours = [(rng.uniform(-0.2, -0.1), rng.uniform(-0.06, 0.04), rng.uniform(0.02, 0.035)) for _ in range(2)]
    for z in range(slices):
        shrink = 1 - ((z - (first + last) / 2) / max((last - first) / 2, 1)) ** 2
        liver = np.zeros_like(outer)
        if shrink > 0:
            liver = inner & (((x + 0.14) / (0.13 * np.sqrt(shrink))) ** 2 + (y / (0.11 * np.sqrt(shrink))) ** 2 < 1)
        tumour = liver & np.any([((x - tx) ** 2 + (y - ty) ** 2) < (r * np.sqrt(max(shrink, 0))) ** 2
                                 for tx, ty, r in tumours], axis=0)
        slice_hu = np.where(outer, -100.0, -1000.0)
        slice_hu = np.where(inner, 40.0, slice_hu)
        slice_hu = np.where(spine, 500.0, slice_hu)
        slice_hu = np.where(liver, 120.0, slice_hu)
        slice_hu = np.where(tumour, 60.0, slice_hu)
        slice_hu = np.where(couch, 150.0, slice_hu) + rng.normal(0, 12, outer.shape)
        hu[z] = np.rint(slice_hu).astype(np.int16)
        labels[z] = np.where(tumour, 2, np.where(liver, 1, 0))
    return hu, labels


def save_nifti(path: Path, volume: np.ndarray) -> None:
    """A ``Z x H x W`` array as NIfTI X x Y x Z in the training orientation (L, P, S voxel axes)."""
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(np.transpose(volume, (2, 1, 0))),
                                     np.diag([-0.8, -0.8, 2.0, 1.0])), str(path))


def fine_tuned(work: Path, size: int, epochs: int) -> Path:
    """A network fine-tuned on synthetic abdominal CTs (liver, tumour), made once per ``--work`` folder; a run
    of fewer epochs there (an earlier, shorter recipe or an interrupted one) is resumed to ``epochs``."""
    run = work / f"finetuned-{size}"
    checkpoint = run / "best.ckpt"
    metrics = run / "metrics.csv"
    done = len(metrics.read_text().splitlines()) - 1 if metrics.exists() else 0
    if checkpoint.exists() and done >= epochs:
        return checkpoint
    data = work / f"train-{size}"
    data.mkdir(parents=True, exist_ok=True)
    for case in range(3):
        hu, labels = abdominal_ct(size, 24, seed=100 + case)
        save_nifti(data / f"volume-{case}.nii.gz", hu)
        save_nifti(data / f"segmentation-{case}.nii.gz", labels)
    command = [sys.executable, "-m", "unet3plus", "train", "--volumes", str(data), "--classes", "liver,tumour",
               "--slices", "labelled", "--epochs", str(epochs), "--batch-size", "2", "--val-split", "0.34",
               "--out", str(run), "--no-progress"] + (["--resume"] if (run / "resume.ckpt").exists() else [])
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    if result.returncode != 0 or not checkpoint.exists():
        raise RuntimeError(f"fine-tuning failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    print(f"fine-tuned in {time.perf_counter() - began:.0f} s (epochs {done + 1}-{epochs} on 3 CTs of 24 slices); "
          f"validation Dice per epoch: {[row.split(',')[3] for row in metrics.read_text().splitlines()[1:]]}",
          flush=True)
    return checkpoint


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def run_strategy(checkpoint: Path, volume: Path, strategy: str, out: Path, home: Path) -> dict:
    """One strategy end to end in a new process: seconds (read, predict, write), peak RSS and the mask."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), UNET3PLUS_HOME=str(home))
    env.pop("UNET3PLUS_BACKEND", None)
    task = {"checkpoint": str(checkpoint), "volume": str(volume), "strategy": strategy, "out": str(out)}
    result = subprocess.run([sys.executable, "-c", STRATEGY_CHILD, json.dumps(task)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{strategy} failed:\n{result.stderr[-3000:]}")
    line = next(line for line in reversed(result.stdout.splitlines()) if line.startswith("@@"))
    return dict(json.loads(line[2:]), mask=np.load(out / "mask.npy"))


def bench_strategies(args: argparse.Namespace) -> None:
    """Each strategy end to end on one synthetic abdominal CT, against ``exact``, in one run."""
    strategies = [s.strip() for s in args.modes.split(",") if s.strip()]
    if "exact" not in strategies:
        strategies.insert(0, "exact")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    slices = args.slices[0]
    print(f"CPU: {cpu_name()}; ISA: {isa_flags()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{args.size} x {args.size} x {slices} int16 NIfTI; strategies {', '.join(strategies)}", flush=True)
    checkpoint = fine_tuned(work, args.size, args.epochs)
    if args.fine_tune_only:
        return
    home = work / "home"
    warm = work / f"warm-{args.size}.nii.gz"
    save_nifti(warm, abdominal_ct(args.size, 24, seed=1)[0])
    began = time.perf_counter()
    for strategy in strategies:  # the exports (whole slice, crop shape) go into the cache before the timing
        run_strategy(checkpoint, warm, strategy, work / "out-warm", home)
    exports = sorted(round(json.loads(p.read_text()).get("export_seconds", 0), 1) for p in (home / "onnx").glob("*.json"))
    print(f"warm-up on 24 slices: {time.perf_counter() - began:.0f} s; ONNX export seconds per shape (once, "
          f"cached): {exports}", flush=True)
    for record in sorted((home / "onnx" / "engine-choices").glob("*.json")):  # runtime/engine_choice.py
        choice = json.loads(record.read_text())
        print(f"fp32 engine chosen in the warm-up for export {record.name[:12]}...: {choice['engine']} ("
              + ", ".join(f"{name} {1000 * s:.0f} ms" for name, s in choice["seconds"].items()) + " per call)",
              flush=True)
    hu, labels = abdominal_ct(args.size, slices, seed=7)
    volume = work / f"ct-{args.size}-{slices}.nii.gz"
    save_nifti(volume, hu)
    rows = {}
    for strategy in strategies:
        rows[strategy] = run_strategy(checkpoint, volume, strategy, work / f"out-{strategy}", home)
        print(f"{strategy}: {rows[strategy]['end_to_end_s']:.1f} s, peak RSS "
              f"{rows[strategy]['peak_rss'] / 2**30:.2f} GiB" + "".join(f"\n    {note}" for note in rows[strategy]["notes"]),
              flush=True)
    exact = rows["exact"]
    truth = [dice(exact["mask"] == label, labels == label) for label in (1, 2)]
    print(f"\nexact against the synthetic truth: Dice liver {truth[0]:.3f}, tumour {truth[1]:.3f} (what the network "
          "learned; the rows below are agreement with exact, not accuracy)")
    print("\n| strategy | end-to-end s | ratio to exact | peak RSS GiB | Dice vs exact: liver | tumour |")
    print("|---|---|---|---|---|---|")
    for strategy, row in rows.items():
        agreement = [dice(row["mask"] == label, exact["mask"] == label) for label in (1, 2)]
        print(f"| {strategy} | {row['end_to_end_s']:.1f} | {row['end_to_end_s'] / exact['end_to_end_s']:.3f}x | "
              f"{row['peak_rss'] / 2**30:.2f} | {agreement[0]:.4f} | {agreement[1]:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[300])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, help="slices per forward pass (default: predict's own default)")
    parser.add_argument("--backends", nargs="+", default=["mindspore", "onnxruntime"],
                        choices=["mindspore", "onnxruntime", "cli"])
    parser.add_argument("--isolated-forward", action="store_true",
                        help="also time the forward calls alone in a separate process")
    parser.add_argument("--modes", help="compare predict's strategies instead, e.g. exact,default,fast")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "unet3plus-bench-volume"),
                        help="--modes: folder for the fine-tuned network, the CTs and the ONNX cache (reused)")
    parser.add_argument("--epochs", type=int, default=14, help="--modes: fine-tuning epochs (default 14)")
    parser.add_argument("--fine-tune-only", action="store_true", help="--modes: make the network and stop")
    args = parser.parse_args()
    if args.modes:
        bench_strategies(args)
        return
    if args.batch is None:
        from unet3plus.runtime.predict import default_batch_size

        args.batch = default_batch_size(args.size, args.size)
    per_slice_input_and_mask = args.size * args.size * 3
    print(f"CPU: {cpu_name()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; slices {args.slices}, "
          f"{args.size} x {args.size}, batch {args.batch}", flush=True)
    rows: Dict[str, List[dict]] = {backend: [] for backend in args.backends if backend != "cli"}
    with tempfile.TemporaryDirectory(prefix="unet3plus-bench-volume-") as scratch:
        folder = Path(scratch)
        onnx = folder / "unet3plus.onnx"
        if "onnxruntime" in args.backends:
            import mindspore as ms

            import unet3plus
            from unet3plus.export import export_network

            ms.set_seed(0)
            export_network(unet3plus.UNet3Plus(), onnx, "onnx", (args.batch, 3, args.size, args.size))
        for slices in args.slices:
            volume = folder / f"ct{slices}.nii.gz"
            synthetic_ct(volume, args.size, slices)
            if "cli" in args.backends:
                bench_cli(folder, volume, slices, args.batch)
            for backend in rows:
                task = {"backend": backend, "onnx": str(onnx), "volume": str(volume), "batch": args.batch,
                        "out": str(folder / f"out-{backend}-{slices}"), "what": "end-to-end"}
                row = dict(run_child(task), slices=slices)
                if args.isolated_forward:
                    row["isolated_forward_s"] = run_child(dict(task, what="forward"))["forward_s"]
                rows[backend].append(row)
                isolated = (f", forward alone {row['isolated_forward_s']:.1f} s (end-to-end / it "
                            f"{row['end_to_end_s'] / row['isolated_forward_s']:.3f}x)" if args.isolated_forward else "")
                print(f"{backend:<12} {slices:>4} slices: end-to-end {row['end_to_end_s']:.1f} s "
                      f"({row['end_to_end_s'] / slices:.2f} s/slice), forward calls {row['forward_s']:.1f} s, "
                      f"end-to-end / forward {row['end_to_end_s'] / row['forward_s']:.3f}x "
                      f"(overhead {100 * (row['end_to_end_s'] / row['forward_s'] - 1):.1f}%){isolated}; "
                      f"peak RSS {row['peak_rss'] / 2**30:.2f} GiB (before reading {row['rss_before'] / 2**30:.2f}); "
                      f"backend creation {row['backend_s']:.2f} s (in end-to-end); process {row['process_s']:.1f} s "
                      f"incl. imports + network {row['setup_s']:.1f} s", flush=True)
    print("\n| slices | backend | end-to-end s | forward s | end-to-end / forward | peak RSS GiB | process s |")
    print("|---|---|---|---|---|---|---|")
    for backend, results in rows.items():
        for row in results:
            print(f"| {row['slices']} | {backend} | {row['end_to_end_s']:.1f} | {row['forward_s']:.1f} | "
                  f"{row['end_to_end_s'] / row['forward_s']:.3f}x | {row['peak_rss'] / 2**30:.2f} | "
                  f"{row['process_s']:.1f} |")
    for backend, results in rows.items():
        if len(results) >= 2:
            first, last = results[0], results[-1]
            growth = (last["peak_rss"] - first["peak_rss"]) / (last["slices"] - first["slices"])
            print(f"{backend}: peak RSS growth {growth / 2**20:.2f} MiB/slice between {first['slices']} and "
                  f"{last['slices']} slices = {growth / per_slice_input_and_mask:.2f}x the int16 input + uint8 mask "
                  f"({per_slice_input_and_mask / 2**20:.2f} MiB/slice)")


if __name__ == "__main__":
    main()
