"""Surface metrics (ASSD, RMSD, MSSD, HD95 in mm) of one 512 x 512 x 200 CT-sized case: unet3plus.metrics
against medpy (the test-only reference implementation) on the same masks.

    python benchmarks/bench_metrics.py [--repeats 3] [--slices 200]

The case is a liver-sized ellipsoid (1.6 litres at 2.5 x 0.7 x 0.7 mm) and a prediction that is the
same ellipsoid shifted and slightly grown, with a bumpy surface, so both surfaces are large and differ.
unet3plus crops to the union bounding box and runs one Euclidean distance transform per direction;
medpy needs its two directed surface-distance passes over the whole volume for the same four numbers.
Calls are interleaved (ours, medpy, ours, ...) and medians compared; both results are checked equal first.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import machine_line

from unet3plus.metrics import surface_distances

SPACING = (2.5, 0.7, 0.7)  # z, y, x in mm: a typical abdominal CT


def liver_like_case(slices: int):
    z, y, x = np.ogrid[:slices, :512, :512]
    zc, yc, xc = slices * SPACING[0] / 2, 280 * SPACING[1], 200 * SPACING[2]
    pz, py, px = z * SPACING[0], y * SPACING[1], x * SPACING[2]
    reference = ((pz - zc) / 75) ** 2 + ((py - yc) / 65) ** 2 + ((px - xc) / 80) ** 2 <= 1.0
    bumps = 0.06 * np.sin(py / 9.0) * np.cos(px / 7.0)
    prediction = ((pz - zc - 4) / 77) ** 2 + ((py - yc + 3) / 67) ** 2 + ((px - xc - 2) / 81) ** 2 <= 1.0 + bumps
    return prediction, reference


def medpy_surface(prediction, reference):
    from medpy.metric import binary

    directed = getattr(binary, "__surface_distances")  # medpy's own EDT pass, full connectivity
    pooled = np.concatenate([directed(prediction, reference, SPACING, 3), directed(reference, prediction, SPACING, 3)])
    return pooled.mean(), np.sqrt((pooled ** 2).mean()), pooled.max(), np.percentile(pooled, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=200)
    args = parser.parse_args()
    prediction, reference = liver_like_case(args.slices)
    print(f"CPU: {machine_line()}; case {prediction.shape}, spacing {SPACING} mm, reference "
          f"{reference.sum() * np.prod(SPACING) / 1e6:.2f} l, "
          f"prediction {prediction.sum() * np.prod(SPACING) / 1e6:.2f} l")
    ours = surface_distances(prediction, reference, SPACING)
    theirs = medpy_surface(prediction, reference)
    np.testing.assert_allclose([ours.assd, ours.rmsd, ours.mssd, ours.hd95], theirs, rtol=1e-9)
    print(f"ASSD {ours.assd:.3f} mm, RMSD {ours.rmsd:.3f} mm, MSSD {ours.mssd:.3f} mm, HD95 {ours.hd95:.3f} mm "
          "(equal to medpy's)")
    times = {"unet3plus": [], "medpy": []}
    for _ in range(args.repeats):
        for name, function in (("unet3plus", lambda: surface_distances(prediction, reference, SPACING)),
                               ("medpy", lambda: medpy_surface(prediction, reference))):
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    ours_s, medpy_s = statistics.median(times["unet3plus"]), statistics.median(times["medpy"])
    print(f"| implementation | median s ({args.repeats} runs) | vs medpy |")
    print("|---|---|---|")
    print(f"| unet3plus.metrics.surface_distances | {ours_s:.2f} | {ours_s / medpy_s:.2f}x |")
    print(f"| medpy 2 x __surface_distances | {medpy_s:.2f} | 1.00x |")


if __name__ == "__main__":
    main()
