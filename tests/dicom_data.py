"""Synthetic CT series written as DICOM files (for the DICOM, geometry and input tests, and the docs' examples)."""
from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROW_SPACING, COLUMN_SPACING, SLICE_STEP = 0.7, 0.8, 2.5


def ct_slice(uids, number):
    """The header every synthetic CT slice shares: ``uids`` (study, series, frame of reference), one new SOP
    instance with InstanceNumber ``number``; geometry and pixels are the caller's."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = CTImageStorage, ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Synthetic^Case", "SYN1", "", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = "20260101", "120000", "", ""
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber, ds.Modality, ds.Manufacturer = "1", 1, number, "CT", "test"
    return ds


def write_series(folder, hu, *, series_uid=None, steps=None, shift_per_slice=(0.0, 0.0), drop_pixels_of=None):
    """One CT series, slice k at z = 100 - k * step (head first: z falls), files named in reverse order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_uid = series_uid or generate_uid(), generate_uid(), generate_uid()
    steps = steps or [SLICE_STEP] * (len(hu) - 1)
    z = 100.0 - np.concatenate([[0.0], np.cumsum(steps)])
    uids = []
    for k, slice_ in enumerate(hu):
        ds = ct_slice((study_uid, series_uid, frame_uid), k + 1)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-20.0 + k * shift_per_slice[0], -30.0 + k * shift_per_slice[1], float(z[k])]
        ds.PixelSpacing, ds.SliceThickness = [ROW_SPACING, COLUMN_SPACING], SLICE_STEP
        ds.Rows, ds.Columns = slice_.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        if k != drop_pixels_of:
            ds.PixelData = (slice_ + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"image{len(hu) - k:03d}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    return uids
