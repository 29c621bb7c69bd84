"""DICOM series in, DICOM Segmentation out: choose one series from a folder, check and describe its geometry
(the NIfTI affine of the ``Z x H x W`` volume, spacing in mm), and write masks as DICOM SEG objects that
reference the source images (``highdicom``, the ``dicom`` extra).

Slices are sorted along the normal of ImageOrientationPatient (the series' stored order, which its DICOM SEG
frames follow) and the volume is then brought to the training orientation by the step NIfTI uses
(``io.nifti.to_training_orientation``). Slices of different sizes, pixel spacings or orientations, a gantry
tilt (slices shifted within their plane from one to the next) or uneven slice spacing have no single affine,
so they are an error rather than a silent resampling.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._atomic import atomic_path
from .._optional import install_hint, require
from .files import DICOM_EXTENSIONS, extension_of, stem_of
from .nifti import nifti_input, nifti_to_slices, to_training_orientation
from .volume import ReadError, Volume, is_dicom_file, unreadable

logger = logging.getLogger(__name__)

__all__ = ["SeriesGeometry", "can_write_segmentation", "dicom_file_spacing", "dicom_hu", "is_lesion_name",
           "is_segmentation_file", "read_dicom_file", "read_segmentation", "read_series", "series_geometry",
           "write_segmentation"]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SPACING_TOLERANCE = 0.01  # relative: slice steps may differ by 1% (rounded positions)
TILT_TOLERANCE_MM = 0.01  # in-plane shift between neighbouring slices
# SNOMED CT types (pydicom ``codes.SCT`` names) of class names, as dcmqi and 3D Slicer code segments: organs under
# the CID 7150 category "Anatomical Structure", lesion-like names under "Morphologically Abnormal Structure".
ORGAN_TYPES = {"liver": "Liver", "kidney": "Kidney", "spleen": "Spleen", "pancreas": "Pancreas",
               "gallbladder": "Gallbladder", "stomach": "Stomach", "lung": "Lung", "heart": "Heart", "aorta": "Aorta",
               "bladder": "Bladder", "prostate": "Prostate", "brain": "Brain", "esophagus": "Esophagus",
               "oesophagus": "Esophagus", "duodenum": "Duodenum", "colon": "Colon", "adrenal gland": "AdrenalGland",
               "adrenal": "AdrenalGland", "bone": "Bone", "vertebra": "Vertebra"}
LESION_TYPES = {"tumour": "Neoplasm", "tumor": "Neoplasm", "neoplasm": "Neoplasm", "cancer": "Neoplasm",
                "lesion": "Lesion", "cyst": "Cyst", "metastasis": "Metastasis", "metastases": "Metastasis",
                "mass": "Mass", "nodule": "Nodule"}


@dataclass(frozen=True)
class SeriesGeometry:
    """``affine``: 4 x 4 NIfTI (RAS) voxel-to-world map of the volume as written (``slices_to_nifti``
    order: column, row, slice); ``spacing``: mm along ``Z x H x W`` (slice step, row, column)."""

    affine: np.ndarray
    spacing: Tuple[float, float, float]


def _normal(dataset: Any) -> np.ndarray:
    orientation = np.asarray(dataset.ImageOrientationPatient, float)
    return np.cross(orientation[:3], orientation[3:])


def series_geometry(datasets: Sequence[Any], where: Path) -> SeriesGeometry:
    """The affine and spacing of slices already sorted along their normal (and checked by
    :func:`check_same_slices`); a ReadError for a gantry tilt or uneven or repeated slice positions."""
    first = datasets[0]
    orientation = np.asarray(first.ImageOrientationPatient, float)
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    if not (row_spacing > 0 and column_spacing > 0):  # NaN fails too
        raise ReadError(f"the PixelSpacing of {where} is {row_spacing:g} x {column_spacing:g} mm, which places every "
                        "pixel at one point; fix the header (mm between pixel centres, both > 0)")
    normal = _normal(first)
    positions = np.array([np.asarray(d.ImagePositionPatient, float) for d in datasets])
    if len(datasets) > 1:
        steps = np.diff(positions, axis=0)
        along = steps @ normal
        in_plane = np.linalg.norm(steps - along[:, None] * normal, axis=1)
        if in_plane.max() > TILT_TOLERANCE_MM:
            raise ReadError(f"the slices of {where} shift by up to {in_plane.max():.2f} mm within their plane from one "
                            "to the next (gantry tilt); resample the series to an orthogonal grid first")
        if along.min() <= 0:
            raise ReadError(f"{where} has two slices at the same position; remove the duplicate files")
        slice_step = float(np.median(along))
        if np.abs(along - slice_step).max() > SPACING_TOLERANCE * slice_step:
            raise ReadError(f"the slices of {where} are unevenly spaced ({along.min():.3g} to {along.max():.3g} mm; "
                            "missing slices?); resample the series to even spacing or complete it")
    else:
        slice_step = float(getattr(first, "SpacingBetweenSlices", 0) or getattr(first, "SliceThickness", 0) or 0)
        if slice_step <= 0:
            logger.warning("%s: one slice without SliceThickness; assuming 1 mm along the slice normal", where)
            slice_step = 1.0
    lps = np.eye(4)
    lps[:3, 0] = orientation[:3] * column_spacing  # first NIfTI axis: along a row, one column per step
    lps[:3, 1] = orientation[3:] * row_spacing
    lps[:3, 2] = normal * slice_step
    lps[:3, 3] = positions[0]
    return SeriesGeometry(LPS_TO_RAS @ lps, (slice_step, row_spacing, column_spacing))


def check_same_slices(datasets: Sequence[Any], where: Path) -> None:
    """A ReadError unless every slice has the first one's Rows/Columns, PixelSpacing and
    ImageOrientationPatient: one affine cannot describe a stack whose pixels differ in size or direction."""
    def values(dataset: Any, key: str) -> Optional[np.ndarray]:
        value = getattr(dataset, key, None)
        return None if value is None else np.atleast_1d(np.asarray(value, float))

    first = datasets[0]
    for key, tolerance in (("Rows", 0.0), ("Columns", 0.0), ("PixelSpacing", 1e-4), ("ImageOrientationPatient", 1e-4)):
        reference = values(first, key)
        for dataset in datasets[1:]:
            other = values(dataset, key)
            if (reference is None) != (other is None) or (reference is not None and (
                    reference.shape != other.shape or not np.allclose(reference, other, rtol=0, atol=tolerance))):
                raise ReadError(f"the slices of {where} have different {key} ({_shown(reference)} and "
                                f"{_shown(other)}); a series must be one stack of alike slices: split or resample "
                                "it, or choose another --series")


def _shown(values: Optional[np.ndarray]) -> str:
    return "missing" if values is None else "\\".join(f"{v:g}" for v in values)


def _has_geometry(dataset: Any) -> bool:
    return all(hasattr(dataset, key) for key in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"))


def _slice_order_key(dataset: Any) -> float:
    if _has_geometry(dataset):
        return float(_normal(dataset) @ np.asarray(dataset.ImagePositionPatient, float))
    return float(getattr(dataset, "InstanceNumber", 0) or 0)


def _series_in(folder: Path) -> Dict[str, List[Tuple[Path, Any]]]:
    pydicom = require("pydicom", "dicom", "Reading DICOM series")
    series: Dict[str, List[Tuple[Path, Any]]] = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if not (extension_of(file) in DICOM_EXTENSIONS or is_dicom_file(file)):
            continue
        try:
            dataset = pydicom.dcmread(str(file))
        except Exception as error:
            raise unreadable(file, "a DICOM image", error) from error
        if getattr(dataset, "Modality", "") == "SEG":
            continue  # a segmentation beside its images (this package writes <name>_seg.dcm) is not a slice
        if "PixelData" in dataset:
            series.setdefault(str(getattr(dataset, "SeriesInstanceUID", "")), []).append((file, dataset))
        elif "Rows" in dataset:  # an image header, pixels lost
            raise ReadError(f"{file} is a DICOM image without pixel data; remove it from the series folder or "
                            "replace it with the complete file")
    return series


def read_series(folder: Path, series_uid: Optional[str] = None) -> Volume:
    """One series of a folder as a ``Z x H x W`` HU volume in the training orientation (``io.nifti``, the
    same step as NIfTI, so that the network sees a feet-first, prone or coronal series as it saw training
    CT), with its geometry (``spacing``, ``affine``) and the way back to the series' own grid
    (``metadata["to_file_orientation"]``). ``metadata["dicom_files"]`` stays in the series' stored order
    (sorted along the slice normal), the order DICOM SEG frames follow. Several series need ``series_uid``."""
    folder = Path(folder)
    series = _series_in(folder)
    if not series:
        raise ReadError(f"folder {folder} holds no DICOM images; point at a DICOM series folder or a file")
    if series_uid is not None:
        if series_uid not in series:
            raise ReadError(f"folder {folder} has no series {series_uid}; it holds: {_listing(series)}")
        chosen = series[series_uid]
    elif len(series) > 1:
        raise ReadError(f"folder {folder} holds {len(series)} DICOM series: {_listing(series)}; choose one with "
                        "--series UID")
    else:
        chosen = next(iter(series.values()))
    chosen.sort(key=lambda item: _slice_order_key(item[1]))
    datasets = [dataset for _, dataset in chosen]
    check_same_slices(datasets, folder)
    try:
        slices = np.concatenate([dicom_hu(d) for d in datasets])
    except ReadError:
        raise
    except Exception as error:
        raise unreadable(folder, "a DICOM series", error) from None
    metadata: Dict[str, Any] = {"modality": getattr(datasets[0], "Modality", ""), "n_files": len(datasets),
                                "series_uid": str(getattr(datasets[0], "SeriesInstanceUID", "")),
                                "dicom_files": [path for path, _ in chosen], "to_file_orientation": None}
    if not all(_has_geometry(d) for d in datasets):  # no geometry: the stored order is all there is
        return Volume(folder.name, "volume", slices, folder, metadata=metadata)
    geometry = series_geometry(datasets, folder)
    nibabel = require("nibabel", "dicom", "Reading DICOM series")
    # A view in NIfTI axis order: no copy unless the series must be reoriented.
    data, affine, spacing, back = to_training_orientation(nibabel, np.transpose(slices, (2, 1, 0)),
                                                          geometry.affine, geometry.spacing)
    metadata["to_file_orientation"] = back
    return Volume(folder.name, "volume", nifti_to_slices(data), folder, metadata=metadata, spacing=spacing,
                  affine=affine)


def _listing(series: Dict[str, List[Any]]) -> str:
    return ", ".join(f"{uid or '(no SeriesInstanceUID)'} ({len(items)} slices)"
                     for uid, items in sorted(series.items()))


def segment_codes(name: str, codes: Any) -> Tuple[Any, Any]:
    """``(category, type)`` SNOMED CT codes of a class name, so that viewers show and colour the segment as what
    it is: a lesion word anywhere in the name wins ("liver tumour" is a Neoplasm), then an organ; a name with
    no known code gets the generic Tissue/Tissue (its segment label still names it)."""
    for category, table in ((codes.SCT.MorphologicallyAbnormalStructure, LESION_TYPES),
                            (codes.SCT.AnatomicalStructure, ORGAN_TYPES)):
        for candidate in _name_candidates(name):
            if candidate in table:
                return category, getattr(codes.SCT, table[candidate])
    return codes.SCT.Tissue, codes.SCT.Tissue


def _name_candidates(name: str) -> List[str]:
    """The whole name and its words, each also without a plural "s" ("kidneys", "cysts")."""
    key = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    words = key.split()
    return [key, key[:-1]] + words + [word[:-1] for word in words]


def is_lesion_name(name: str) -> bool:
    """Whether a class name is lesion-like ("tumour", "liver tumor", "cysts"...): the rule that codes its DICOM
    SEG segment as a Morphologically Abnormal Structure, so statistics count its lesions by the same rule."""
    return any(candidate in LESION_TYPES for candidate in _name_candidates(name))


def display_colour(number: int) -> Tuple[int, int, int]:
    """A distinct RGB colour for segment ``number``: hues a golden-ratio turn apart, so no two segments (and
    no neighbouring labels) look alike in a viewer."""
    import colorsys

    rgb = colorsys.hsv_to_rgb((number - 1) * 0.6180339887 % 1.0, 0.75, 0.95)
    return tuple(int(round(255 * channel)) for channel in rgb)  # type: ignore[return-value]


def _segment_description(number: int, name: str, highdicom: Any, codes: Any, algorithm: Any) -> Any:
    category, kind = segment_codes(name, codes)
    return highdicom.seg.SegmentDescription(
        segment_number=number, segment_label=name[:64], segmented_property_category=category,
        segmented_property_type=kind, algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, display_color=highdicom.color.CIELabColor.from_rgb(*display_colour(number)))


def can_write_segmentation() -> bool:
    """Whether highdicom is installed; without it a DICOM series gets its NIfTI mask only (with a warning)."""
    if importlib.util.find_spec("highdicom") is None:
        logger.warning("DICOM SEG output needs highdicom: %s; writing the NIfTI mask only", install_hint("dicom"))
        return False
    return True


def write_segmentation(path: Path, mask: np.ndarray, source: Volume, class_names: Sequence[str]) -> Path:
    """A DICOM Segmentation (binary, one segment per label 1..n, named and coded by ``class_names[k - 1]``,
    see ``io.prediction.foreground_class_names``) of the ``Z x H x W`` label map ``mask`` on the series
    ``source`` was read from, referencing its images. ``mask`` must be in the series' stored order
    (``writers.on_input_grid``), not the training orientation: frame k references file k."""
    if isinstance(class_names, str) or not len(class_names):
        raise ValueError(f"write_segmentation needs one class name per segment, got {class_names!r}; pass "
                         "io.prediction.foreground_class_names(prediction)")
    highdicom = require("highdicom", "dicom", "Writing DICOM Segmentation objects")
    pydicom = require("pydicom", "dicom", "Writing DICOM Segmentation objects")
    from pydicom.sr.codedict import codes

    from .._version import __version__

    files = source.metadata.get("dicom_files")
    if not files or len(files) != mask.shape[0]:
        raise ReadError(f"{source.path} was not read as a DICOM series of {mask.shape[0]} slices; DICOM SEG needs one")
    images = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in files]
    algorithm = highdicom.AlgorithmIdentificationSequence(
        name="unet3plus", version=__version__, family=codes.cid7162.ArtificialIntelligence)
    segmentation = highdicom.seg.Segmentation(
        source_images=images, pixel_array=np.asarray(mask, np.uint8),
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment_description(number, str(name), highdicom, codes, algorithm)
                              for number, name in enumerate(class_names, start=1)],
        series_instance_uid=highdicom.UID(), series_number=9001, sop_instance_uid=highdicom.UID(),
        instance_number=1, manufacturer="unet3plus", manufacturer_model_name="UNet 3+",
        software_versions=__version__, device_serial_number="unet3plus", omit_empty_frames=False)
    description = f"unet3plus: {', '.join(str(name) for name in class_names)}"
    segmentation.SeriesDescription = description if len(description) <= 64 else description[:61] + "..."  # LO
    with atomic_path(path) as temporary:
        segmentation.save_as(str(temporary))
    return Path(path)


def is_segmentation_file(path: Path) -> bool:
    """A ``.dcm``/``.dicom`` file holding a DICOM Segmentation (its header says Modality SEG)."""
    if extension_of(path) not in DICOM_EXTENSIONS:
        return False
    pydicom = require("pydicom", "dicom", "Reading DICOM Segmentation objects")
    try:
        return getattr(pydicom.dcmread(str(path), stop_before_pixels=True), "Modality", "") == "SEG"
    except Exception:  # not DICOM after all: the caller skips it like any other unknown file
        return False


def read_segmentation(path: Path) -> Volume:
    """A DICOM Segmentation as a label map (each voxel its segment number, 0 outside every segment) on the
    grid of the images it was drawn on, in the training orientation like a NIfTI mask, so that it is scored
    against NIfTI labels of the same series (``unet3plus evaluate --predictions``)."""
    highdicom = require("highdicom", "dicom", "Reading DICOM Segmentation objects")
    nibabel = require("nibabel", "nifti", "Reading DICOM Segmentation objects")
    try:
        segmentation = highdicom.seg.segread(str(path))
        volume = segmentation.get_volume(combine_segments=True, relabel=False, dtype=np.uint8)
    except Exception as error:
        raise ReadError(f"cannot read {path} as a DICOM Segmentation on a regular grid: {error}. Check that the file "
                        "is complete; a SEG of a tilted or unevenly spaced series has no single grid") from error
    image = volume.to_nibabel()
    data = np.asarray(image.dataobj)
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    return nifti_input(nibabel, image, data, Path(path), kind="mask")


def dicom_hu(dataset: Any) -> np.ndarray:
    """Pixels in HU: stored values times RescaleSlope plus RescaleIntercept (frames first)."""
    pixels = dataset.pixel_array.astype(np.float32)
    slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
    intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
    hu = pixels * np.float32(slope) + np.float32(intercept)
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if hu.ndim == 2:
        return hu[np.newaxis]
    if hu.ndim == 3 and frames > 1:
        return hu
    raise ReadError(f"DICOM pixel data of shape {hu.shape} is not grey-level CT (colour DICOM is not supported)")



def read_dicom_file(path: Path) -> Volume:
    """One DICOM image file (a slice, or a multi-frame volume) in HU, with its spacing in mm where the
    header states it (PixelSpacing; SpacingBetweenSlices or SliceThickness, NaN when neither is given).
    A DICOM Segmentation is read as the mask it holds (``dicom.read_segmentation``)."""
    pydicom = require("pydicom", "dicom", "Reading DICOM files")
    try:
        dataset = pydicom.dcmread(str(path))
    except Exception as error:
        raise unreadable(path, "a DICOM image", error) from error
    if getattr(dataset, "Modality", "") == "SEG":
        return read_segmentation(path)
    if "PixelData" not in dataset and "Rows" in dataset:  # an image header whose pixels were lost or left out
        raise ReadError(f"{path} is a DICOM image without pixel data (a header-only copy?); replace it with the "
                        "complete file")
    if "PixelData" not in dataset:
        raise unreadable(path, "a DICOM image", ValueError("it holds no image (cut short, or a DICOMDIR or report?)"))
    try:
        volume = dicom_hu(dataset)
    except ReadError:
        raise
    except Exception as error:
        raise unreadable(path, "a DICOM image", error) from error
    return Volume(stem_of(path), "volume", volume, path, metadata={"modality": getattr(dataset, "Modality", "")},
                       spacing=dicom_file_spacing(dataset))



def dicom_file_spacing(dataset: Any) -> Optional[Tuple[float, float, float]]:
    """mm along ``Z x H x W`` of one DICOM image: the slice step (SpacingBetweenSlices, else SliceThickness;
    NaN when neither is stated) and PixelSpacing (rows, columns); None without PixelSpacing. A zero or
    negative value is kept, so that the distance metrics refuse it with the file's name."""
    pixel = getattr(dataset, "PixelSpacing", None)
    if pixel is None or len(pixel) != 2:
        return None
    step = getattr(dataset, "SpacingBetweenSlices", None) or getattr(dataset, "SliceThickness", None)
    return (float(step) if step not in (None, "") else float("nan"), float(pixel[0]), float(pixel[1]))
