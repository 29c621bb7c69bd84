"""Files in and out: readers that all return one :class:`Volume` (NIfTI, DICOM series and files, images,
``.npy``), the DICOM SEG and NIfTI writers, file pairing and the dataset layouts people download.

Nothing here knows about the network: ``transforms`` turns a Volume into network input, ``runtime`` runs it.
"""
from .prediction import Prediction
from .readers import read_input
from .volume import ReadError, Volume
from .writers import overlay, write_prediction

__all__ = ["Prediction", "ReadError", "Volume", "overlay", "read_input", "write_prediction"]
