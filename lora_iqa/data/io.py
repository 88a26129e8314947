"""Image input/output: PNG, JPEG, TIFF (8/16-bit, float) and DICOM (HU + display window).

Every image comes back as float32 in [0, 1]: shape (H, W) for grayscale, (H, W, 3) for colour.
Every failure to read is a one-line :class:`LoraIqaError` that names the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from lora_iqa.errors import LoraIqaError, atomic_path

DEFAULT_WINDOW: tuple[float, float] = (40.0, 400.0)  # (level/center, width): soft tissue, in HU

PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
_PILLOW_FORMATS = ("PNG", "JPEG", "TIFF")  # JPEG also opens MPO files
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def load_image(path: str | os.PathLike, window: tuple[float, float] | None = None) -> np.ndarray:
    """Load an image as float32 in [0, 1]: (H, W) for grayscale, (H, W, 3) for RGB (alpha dropped).

    DICOM (``.dcm`` suffix or the ``DICM`` magic) is converted to HU and mapped through a window
    ``(level, width)``: the ``window`` argument if given, else the file's WindowCenter/WindowWidth,
    else :data:`DEFAULT_WINDOW`. ``window`` is ignored for non-DICOM images.
    """
    path = _check_file(path)
    if path.suffix.lower() in DICOM_SUFFIXES or _has_dicm_magic(path):
        return _load_dicom(path, window)
    if path.suffix.lower() in PILLOW_SUFFIXES:
        return _load_pillow(path)
    raise LoraIqaError(
        f"{path}: unsupported file type '{path.suffix}' (expected PNG, JPEG, TIFF or DICOM)"
    )


def read_dicom_hu(path: str | os.PathLike) -> tuple[np.ndarray, pydicom.Dataset]:
    """Read a grayscale DICOM as float32 HU (RescaleSlope/Intercept applied; middle frame if multi-frame)."""
    path = _check_file(path)
    arr, ds = _read_dicom(path)
    if arr.ndim != 2:
        raise LoraIqaError(f"{path}: colour DICOM ({ds.get('PhotometricInterpretation')}) has no HU values")
    return _to_hu(arr, ds, path), ds


def apply_window(hu: np.ndarray, window: tuple[float, float] = DEFAULT_WINDOW) -> np.ndarray:
    """HU -> [0, 1] through a display window ``(level, width)`` (the dtype follows ``hu``)."""
    level, width = window
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width}")
    return np.clip((hu - (level - width / 2)) / width, 0.0, 1.0)


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


# --- internals -------------------------------------------------------------------------------


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise LoraIqaError(f"{path}: file not found")
    if not path.is_file():
        raise LoraIqaError(f"{path}: not a file")
    return path


def _has_dicm_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as e:
        raise LoraIqaError(f"{path}: cannot read ({_reason(e)})") from e
    return head[128:132] == b"DICM"


def _reason(e: BaseException) -> str:
    """A short one-line description of an exception from a third-party reader."""
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    first = first if len(first) <= 200 else first[:197] + "..."
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _to_unit(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Integer samples -> divide by the dtype's max; float samples -> clip to [0, 1]."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        return (arr / np.iinfo(arr.dtype).max).astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise LoraIqaError(f"{path}: {what} contains NaN or inf")
        return np.clip(arr, 0.0, 1.0).astype(np.float32)
    raise LoraIqaError(f"{path}: unsupported sample type {arr.dtype} in {what}")


def _channels(arr: np.ndarray, path: Path) -> np.ndarray:
    """Drop alpha / singleton channels: (H, W), (H, W, 1|2) -> (H, W); (H, W, 3|4) -> (H, W, 3)."""
    if arr.ndim == 3 and arr.shape[2] in (1, 2):
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise LoraIqaError(f"{path}: unsupported image shape {arr.shape}")
    if arr.size == 0:
        raise LoraIqaError(f"{path}: image is empty (shape {arr.shape})")
    return arr


def _load_pillow(path: Path) -> np.ndarray:
    try:
        with Image.open(path, formats=_PILLOW_FORMATS) as im:
            im.load()
            if _deep_colour(im, path):
                return _load_tiff_deep(path)
            if im.mode in ("1", "L", "RGB", "I;16", "I;16L", "I;16B", "I;16N", "F"):
                arr = np.asarray(im)
            elif im.mode == "I":  # 32-bit integer: accepted when it holds 16-bit values
                arr = np.asarray(im)
                if arr.size and (arr.min() < 0 or arr.max() > 65535):
                    raise LoraIqaError(f"{path}: 32-bit integer image with values outside 0..65535")
                arr = arr.astype(np.uint16)
            elif im.mode in ("LA", "La"):
                arr = np.asarray(im.convert("L"))
            else:  # P, PA, RGBA, RGBa, CMYK, YCbCr, LAB, HSV...
                arr = np.asarray(im.convert("RGB"))
    except LoraIqaError:
        raise
    except Exception as e:  # Pillow raises many types for unreadable, corrupt or truncated files
        raise LoraIqaError(f"{path}: cannot read image ({_reason(e)})") from e
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return _to_unit(_channels(arr, path), path, "image")


def _deep_colour(im: Image.Image, path: Path) -> bool:
    """True for colour images with more than 8 bits per sample, which Pillow would truncate to 8."""
    if im.mode in ("1", "L", "I", "F") or im.mode.startswith("I;16"):
        return False
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    if im.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(26)
        if head[24] == 16:
            raise LoraIqaError(
                f"{path}: 16-bit colour PNG is not supported (it would lose precision); "
                "save it as 16-bit TIFF or as 16-bit grayscale PNG"
            )
    return False


def _load_tiff_deep(path: Path) -> np.ndarray:
    """Colour TIFF with > 8 bits per sample, through tifffile when it is installed."""
    try:
        import tifffile
    except ImportError:
        raise LoraIqaError(
            f"{path}: colour TIFF with more than 8 bits per sample needs the 'tifffile' package"
        ) from None
    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            arr = page.asarray()
            if page.axes.startswith("S") and arr.ndim == 3:  # planar (separate) configuration
                arr = np.moveaxis(arr, 0, -1)
    except Exception as e:
        raise LoraIqaError(f"{path}: cannot read TIFF ({_reason(e)})") from e
    return _to_unit(_channels(arr, path), path, "image")


def _read_dicom(path: Path) -> tuple[np.ndarray, pydicom.Dataset]:
    """The decoded pixel array (middle frame if multi-frame) and the dataset."""
    ds = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            if not any(k in ds for k in _PIXEL_KEYWORDS):
                hint = "" if _has_dicm_magic(path) else " (and no 'DICM' header: is it DICOM at all?)"
                raise LoraIqaError(f"{path}: DICOM file has no pixel data{hint}")
            arr = np.asarray(ds.pixel_array)  # decodes now: truncated or corrupt data fails here
            frames = int(ds.get("NumberOfFrames") or 1)
            if frames > 1:
                arr = arr[frames // 2]
            if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
                arr = pydicom.pixels.apply_color_lut(arr, ds)
    except LoraIqaError:
        raise
    except Exception as e:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        what = f"cannot decode {ts.name} pixel data" if ts and ts.is_compressed else "cannot read DICOM"
        raise LoraIqaError(f"{path}: {what} ({_reason(e)})") from e
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise LoraIqaError(f"{path}: DICOM image is empty or has unsupported shape {arr.shape}")
    return arr, ds


def _to_hu(arr: np.ndarray, ds: pydicom.Dataset, path: Path) -> np.ndarray:
    try:
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
    except (TypeError, ValueError) as e:
        raise LoraIqaError(f"{path}: invalid RescaleSlope/RescaleIntercept ({_reason(e)})") from e
    return (arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)


def _load_dicom(path: Path, window: tuple[float, float] | None) -> np.ndarray:
    arr, ds = _read_dicom(path)
    if arr.ndim == 3:  # colour (RGB, YBR converted to RGB by pydicom, or palette)
        arr = _channels(arr, path)
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            return _to_unit(arr, path, "DICOM image")
        bits = int(ds.get("BitsStored") or 8)
        return np.clip(arr / float(2**bits - 1), 0.0, 1.0).astype(np.float32)
    out = apply_window(_to_hu(arr, ds, path), window if window is not None else (_file_window(ds) or DEFAULT_WINDOW))
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32)


def _file_window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """The file's (WindowCenter, WindowWidth), first value if multi-valued; None if absent or invalid."""
    try:
        values = []
        for key in ("WindowCenter", "WindowWidth"):
            v = ds.get(key)
            if isinstance(v, pydicom.multival.MultiValue):
                v = v[0] if len(v) else None
            values.append(float(v))
    except (TypeError, ValueError):
        return None
    level, width = values
    return (level, width) if np.isfinite(level) and np.isfinite(width) and width > 0 else None


def _ds_number(x: float) -> str:
    """A DICOM decimal string for a window value."""
    return str(int(x)) if float(x).is_integer() else f"{float(x):.6g}"
