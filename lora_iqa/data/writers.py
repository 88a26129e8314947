"""Writing images: 16-bit PNG and CT DICOM (what ``lora-iqa synth`` produces)."""

from __future__ import annotations

import os

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from lora_iqa.data.io import DEFAULT_WINDOW
from lora_iqa.errors import atomic_path


def to_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3) float32."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim != 2:
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {img.shape}")
    return np.repeat(img[:, :, None], 3, axis=2)


def write_png16(path: str | os.PathLike, img01: np.ndarray) -> None:
    """Write an (H, W) float image in [0, 1] (clipped) as a 16-bit grayscale PNG, atomically."""
    img = np.asarray(img01, dtype=np.float64)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"write_png16 expects a non-empty (H, W) image, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("write_png16: image contains NaN or inf")
    data = np.round(np.clip(img, 0.0, 1.0) * 65535.0).astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(data).save(tmp, format="PNG")


def write_dicom_ct(
    path: str | os.PathLike, hu: np.ndarray, window: tuple[float, float] = DEFAULT_WINDOW, **meta: object
) -> None:
    """Write an (H, W) HU image as a CT DICOM (int16, explicit VR little endian), atomically.

    HU are rounded to integers (slope 1, intercept 0) and clipped to the int16 range.
    ``meta`` sets further DICOM attributes by keyword, e.g. ``PatientID="p01", PixelSpacing=[0.5, 0.5]``.
    """
    hu = np.asarray(hu, dtype=np.float64)
    if hu.ndim != 2 or hu.size == 0:
        raise ValueError(f"write_dicom_ct expects a non-empty (H, W) image, got shape {hu.shape}")
    if not np.isfinite(hu).all():
        raise ValueError("write_dicom_ct: image contains NaN or inf")
    for key in meta:
        if pydicom.datadict.tag_for_keyword(key) is None:
            raise ValueError(f"write_dicom_ct: '{key}' is not a DICOM keyword")
    pixels = np.clip(np.round(hu), -32768, 32767).astype("<i2")

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = CTImageStorage
    file_meta.MediaStorageSOPInstanceUID = generate_uid()
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=file_meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientID = generate_uid()  # an opaque id unless meta gives one
    ds.PatientName = "Anonymous"
    ds.Modality = "CT"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = _ds_number(window[0])
    ds.WindowWidth = _ds_number(window[1])
    for key, value in meta.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _ds_number(x: float) -> str:
    """A DICOM decimal string for a window value."""
    return str(int(x)) if float(x).is_integer() else f"{float(x):.6g}"
