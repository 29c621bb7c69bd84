"""Feeding speed: training samples per second read straight from volumes vs the PNG path, at 512 x 512.

The same synthetic CT cases are written three ways: NIfTI ``.nii`` (memory-mapped), NIfTI ``.nii.gz``
(what LiTS and the Decathlon ship) and the PNG slices ``preprocess-lits`` would write. Each round reads
the same random samples from every source, interleaved, and the median round is reported. The cost of
feeding a batch-2 step is set against the measured training step time (``--step-seconds``, default
3.73 s: ``benchmarks/RESULTS.md``, MindSpore GRAPH package default, 2026-11-25, same machine).

    python benchmarks/bench_volume_loading.py [--cases 3] [--slices 48] [--samples 40] [--rounds 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_line, median

import unet3plus  # noqa: F401  (oneDNN default before MindSpore)
from unet3plus.data import DataOptions, SegmentationDataset, VolumeDataset, VolumeOptions
from unet3plus.data.lits import to_uint8_image
from unet3plus.data.synthetic import synthetic_liver_volume
from unet3plus.io.nifti import slices_to_nifti
from unet3plus.io.writers import write_png
from unet3plus.transforms.presets import get_preset


def write_sources(root: Path, cases: int, slices: int):
    import nibabel

    options = VolumeOptions(classes=("liver", "tumour"))
    for case in range(cases):
        hu, labels = synthetic_liver_volume((slices, 512, 512), seed=case)
        hu = np.rint(hu).astype(np.int16)
        for suffix in (".nii", ".nii.gz"):
            folder = root / suffix.strip(".").replace(".", "_")
            folder.mkdir(exist_ok=True)
            nibabel.save(nibabel.Nifti1Image(slices_to_nifti(hu), np.eye(4)), str(folder / f"volume-{case}{suffix}"))
            nibabel.save(nibabel.Nifti1Image(slices_to_nifti(labels), np.eye(4)),
                         str(folder / f"segmentation-{case}.nii.gz"))
        inputs = get_preset("lits2017")(hu)
        for z in range(slices):
            write_png(root / "png" / "images" / f"volume-{case}_{z:04d}.png", to_uint8_image(inputs[z]))
            write_png(root / "png" / "masks" / f"volume-{case}_{z:04d}.png", labels[z])
    return {
        "PNG slices (preprocess-lits)": SegmentationDataset.from_folders(root / "png" / "images", root / "png" / "masks",
                                                                         DataOptions(n_classes=3)),
        "volumes, .nii (memory-mapped)": VolumeDataset.from_folder(root / "nii", options=options),
        "volumes, .nii.gz": VolumeDataset.from_folder(root / "nii_gz", options=options),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--slices", type=int, default=48)
    parser.add_argument("--samples", type=int, default=40, help="random samples read per source and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=3.73, help="batch-2 512x512 training step time")
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as folder:
        sources = write_sources(Path(folder), args.cases, args.slices)
        n_items = args.cases * args.slices
        seconds = {name: [] for name in sources}
        for round_ in range(args.rounds + 1):  # round 0 warms the page cache and is not counted
            order = np.random.default_rng(round_).integers(0, n_items, args.samples)
            for name, data in sources.items():
                start = time.perf_counter()
                for index in order:
                    image, labels = data[int(index)]
                if round_:
                    seconds[name].append((time.perf_counter() - start) / args.samples)
    baseline = median(seconds["PNG slices (preprocess-lits)"])
    print(f"{args.cases} cases x {args.slices} slices of 512x512, {args.samples} random samples x {args.rounds} rounds "
          f"(median), one process; step time {args.step_seconds} s (batch 2)")
    print("| source | ms/sample | samples/s | vs PNG | batch-2 loading / step |")
    print("|---|---|---|---|---|")
    for name, values in seconds.items():
        per_sample = median(values)
        print(f"| {name} | {per_sample * 1e3:.1f} | {1 / per_sample:.1f} | {per_sample / baseline:.2f}x | "
              f"{2 * per_sample / args.step_seconds:.1%} |")


if __name__ == "__main__":
    main()
