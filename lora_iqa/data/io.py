"""Image input/output: PNG, JPEG, TIFF (8/16-bit, float in [0, 1]) and DICOM (HU + display window).

Every image comes back as float32 in [0, 1]: shape (H, W) for grayscale, (H, W, 3) for colour,
turned upright by its EXIF/TIFF orientation. Every failure to read, and every file that is no image
to score (a DICOM segmentation, dose grid or other non-image object, a 1-bit mask, an image under
:data:`MIN_SIDE` pixels a side), is a one-line :class:`LoraIqaError` that names the file.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np
import pydicom
from PIL import Image

from lora_iqa.errors import LoraIqaError, reason

DEFAULT_WINDOW: tuple[float, float] = (40.0, 400.0)  # (level/center, width): soft tissue, in HU
MIN_SIDE = 16  # px: below this an image shows no quality to judge (a 1x1 white PNG scored "excellent")
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
_PILLOW_FORMATS = ("PNG", "JPEG", "TIFF")  # JPEG also opens MPO files
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_ORIENTATION, _BITS_PER_SAMPLE, _SAMPLE_FORMAT = 0x0112, 258, 339  # EXIF/TIFF tags
_UNIT_TOLERANCE = 0.01  # float samples this far outside [0, 1] are rounding or resampling overshoot
# DICOM objects whose pixels (if any) are labels, doses or overlays, not an image to score: by
# Modality, and by SOP class (a UID equal to or under one of these roots).
_NOT_IMAGE_MODALITIES = {
    "SEG": "segmentation", "RTDOSE": "RT dose grid", "RTSTRUCT": "RT structure set", "RTPLAN": "RT plan",
    "RTRECORD": "RT treatment record", "PR": "presentation state", "SR": "structured report",
    "KO": "key object selection", "REG": "registration", "FID": "fiducials", "DOC": "document",
}
_NOT_IMAGE_SOP_ROOTS = (
    "1.2.840.10008.5.1.4.1.1.11",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, registrations, segmentations, fiducials
    "1.2.840.10008.5.1.4.1.1.88",  # structured reports, key object selection
    "1.2.840.10008.5.1.4.1.1.104",  # encapsulated documents
    "1.2.840.10008.5.1.4.1.1.481",  # RT dose, structure sets, plans, records (RT Image is an image)
)
_RT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.1"


def load_image(
    path: str | os.PathLike, window: tuple[float, float] | None = None, max_side: int | None = None
) -> np.ndarray:
    """Load an image as float32 in [0, 1]: (H, W) for grayscale, (H, W, 3) for RGB (alpha dropped).

    DICOM (``.dcm`` suffix or the ``DICM`` magic) is converted to HU and mapped through a window
    ``(level, width)``: the ``window`` argument if given, else the file's WindowCenter/WindowWidth,
    else :data:`DEFAULT_WINDOW`. ``window`` is ignored for non-DICOM images.

    A TIFF carries no units, so its samples must already be fractions of full scale: unsigned
    integers are divided by their maximum, float samples are used as they are when they lie in
    [0, 1] (overshoot up to 0.01 is clipped). Float samples outside [0, 1] and signed integers are
    refused: they are most likely HU, which need a display window, and unlike DICOM a TIFF cannot
    say that they are HU. JPEG and PNG are turned upright by their EXIF orientation, TIFF by its
    Orientation tag. Also refused, in one line naming the file: images under :data:`MIN_SIDE` px a
    side, 1-bit masks, and DICOM objects that hold no image to score (segmentations, RT dose grids,
    structure sets and plans, presentation states, structured reports...).

    ``max_side``: when the image's longer side exceeds it, the image is box-reduced by the smallest
    integer factor that brings that side to at most ``max_side`` (partial boxes at the right and
    bottom edges average the pixels they hold), before any full-size float copy is made: JPEG
    decodes at 1/2, 1/4 or 1/8 scale first, 8-bit images reduce in Pillow, 16-bit, float and DICOM
    data in numpy (DICOM before windowing). ``None`` keeps the image whole.
    """
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < MIN_SIDE
    ):
        raise ValueError(f"max_side must be None or an integer >= {MIN_SIDE}, got {max_side!r}")
    path = _check_file(path)
    if path.suffix.lower() in DICOM_SUFFIXES or _has_dicm_magic(path):
        return _load_dicom(path, window, max_side)
    if path.suffix.lower() in PILLOW_SUFFIXES:
        return _load_pillow(path, max_side)
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


def _check_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a regular file (links followed); else one line saying why not."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise LoraIqaError(f"{_shown(path)}: file not found") from None
    except (OSError, ValueError) as e:  # a link loop, a name too long, a NUL byte, no permission...
        raise LoraIqaError(f"{_shown(path)}: cannot open ({reason(e)})") from None
    if not stat.S_ISREG(mode):
        raise LoraIqaError(f"{path}: not a file")
    return path


def _shown(path: str | os.PathLike) -> str:
    """The path for a one-line message: unprintable characters (a NUL byte...) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def _has_dicm_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as e:
        raise LoraIqaError(f"{path}: cannot read ({reason(e)})") from e
    return head[128:132] == b"DICM"


def _check_size(path: Path, width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise LoraIqaError(
            f"{path}: image is {width}x{height} px, below the minimum of {MIN_SIDE} px a side"
        )


def _factor(size: tuple[int, ...], max_side: int | None) -> int:
    """The smallest integer box factor that brings the longer of ``size`` to <= ``max_side``."""
    return max(1, -(-max(size) // max_side)) if max_side else 1


def _box_reduce(arr: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block as float32 (edge blocks over the pixels they hold,
    as Pillow's ``Image.reduce`` does), one band of rows at a time: no full-size float copy."""
    h, w = arr.shape[:2]
    cols = np.arange(0, w, factor)
    widths = np.diff(cols, append=w).reshape((-1,) + (1,) * (arr.ndim - 2))
    out = np.empty((-(-h // factor), len(cols)) + arr.shape[2:], np.float32)
    for i, top in enumerate(range(0, h, factor)):
        band = arr[top:top + factor]
        sums = np.add.reduceat(band, cols, axis=1, dtype=np.float64).sum(axis=0)
        out[i] = sums / (band.shape[0] * widths)
    return out


def _reduced(arr: np.ndarray, max_side: int | None) -> np.ndarray:
    """``arr`` box-reduced (float32) when its longer side exceeds ``max_side``, else ``arr`` itself."""
    factor = _factor(arr.shape[:2], max_side)
    return _box_reduce(arr, factor) if factor > 1 else arr


# EXIF/TIFF orientation -> the view that turns the stored rows upright (as ImageOps.exif_transpose;
# a view, so the float conversion that follows makes the only copy)
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _orient(arr: np.ndarray, orientation: object) -> np.ndarray:
    """``arr`` turned upright by an EXIF/TIFF orientation (1-8; any other value: as it is)."""
    turn = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return turn(arr) if turn else arr


def _to_unit(arr: np.ndarray, path: Path, what: str, max_side: int | None = None) -> np.ndarray:
    """Samples -> contiguous float32 in [0, 1], box-reduced first when ``max_side`` asks for it.

    Unsigned integers are divided by the dtype's maximum; float samples must lie in [0, 1] (within
    :data:`_UNIT_TOLERANCE`, then clipped); signed integers are refused (see :func:`load_image`).
    """
    if np.issubdtype(arr.dtype, np.signedinteger):
        _refuse_signed(path, arr, arr.dtype.itemsize * 8)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        out = _float_copy(arr, max_side)
        # in float32: the same values as dividing in float64 and rounding (checked for every 8- and
        # 16-bit value), without a float64 copy of the image
        out /= np.float32(np.iinfo(arr.dtype).max)
        return out
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise LoraIqaError(f"{path}: {what} contains NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -_UNIT_TOLERANCE or hi > 1 + _UNIT_TOLERANCE:
            raise LoraIqaError(
                f"{path}: float {what} holds values {lo:.6g}..{hi:.6g}, outside [0, 1]: if they are HU, "
                "save it as DICOM or window it to [0, 1]; otherwise scale it to [0, 1]"
            )
        out = _float_copy(arr, max_side)
        return np.clip(out, 0.0, 1.0, out=out)
    raise LoraIqaError(f"{path}: unsupported sample type {arr.dtype} in {what}")


def _float_copy(arr: np.ndarray, max_side: int | None) -> np.ndarray:
    """A new C-contiguous float32 array of ``arr``'s samples (box-reduced if ``max_side`` asks)."""
    out = _reduced(arr, max_side)
    return np.array(arr, dtype=np.float32, order="C") if out is arr else out


def _refuse_signed(path: Path, arr: np.ndarray, bits: int) -> NoReturn:
    raise LoraIqaError(
        f"{path}: signed {bits}-bit samples (values {int(arr.min())}..{int(arr.max())}) are most likely "
        "HU, which need a display window: save it as DICOM or window it to [0, 1]"
    )


def _channels(arr: np.ndarray, path: Path) -> np.ndarray:
    """Drop alpha / singleton channels: (H, W), (H, W, 1|2) -> (H, W); (H, W, 3|4) -> (H, W, 3)."""
    if arr.ndim == 3 and arr.shape[2] in (1, 2):
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise LoraIqaError(f"{path}: unsupported image shape {arr.shape}")
    return arr


def _load_pillow(path: Path, max_side: int | None) -> np.ndarray:
    try:
        # Opened through a file object: Pillow memory-maps an uncompressed TIFF opened by name, and
        # its map ignores the size an Orientation tag of 5-8 swaps (garbled rows, seen in Pillow 13).
        with open(path, "rb") as f, Image.open(f, formats=_PILLOW_FORMATS) as im:
            _check_size(path, *im.size)
            if im.mode == "1":
                raise LoraIqaError(f"{path}: 1-bit (black and white) image: a mask, not an image to score")
            if _deep_colour(im, path):
                return _load_tiff_deep(path, _tag(im, _ORIENTATION, 1), max_side)
            factor = _factor(im.size, max_side)
            if factor > 1 and im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale, no smaller
                im.draft(im.mode, (-(-im.size[0] // factor), -(-im.size[1] // factor)))
            im.load()
            # Pillow turns a TIFF upright as it loads it; the EXIF orientation of JPEG and PNG is ours
            orientation = 1 if im.format == "TIFF" else im.getexif().get(_ORIENTATION, 1)
            return _pillow_samples(im, path, orientation, max_side)
    except LoraIqaError:
        raise
    except Exception as e:  # Pillow raises many types for unreadable, corrupt or truncated files
        raise LoraIqaError(f"{path}: cannot read image ({reason(e)})") from e


def _pillow_samples(im: Image.Image, path: Path, orientation: object, max_side: int | None) -> np.ndarray:
    """A loaded Pillow image -> float32 in [0, 1], upright, reduced when ``max_side`` asks for it."""
    if im.mode == "I":  # 32-bit integer: accepted when it holds unsigned 16-bit values
        arr = np.asarray(im)
        if _tag(im, _SAMPLE_FORMAT, 1) == 2:  # TIFF SampleFormat: signed integer
            _refuse_signed(path, arr, _tag(im, _BITS_PER_SAMPLE, 32))
        if arr.min() < 0 or arr.max() > 65535:
            raise LoraIqaError(f"{path}: 32-bit integer image with values outside 0..65535")
        arr = arr.astype(np.uint16)
    elif im.mode == "F" or im.mode.startswith("I;16"):  # Image.reduce takes neither: reduced in numpy
        arr = np.asarray(im)
    else:  # 8 bits a sample: converted, then reduced in Pillow
        if im.mode in ("LA", "La"):
            im = im.convert("L")
        elif im.mode not in ("L", "RGB"):  # P, PA, RGBA, RGBa, CMYK, YCbCr, LAB, HSV...
            im = im.convert("RGB")
        factor = _factor(im.size, max_side)
        arr = np.asarray(im.reduce(factor) if factor > 1 else im)
    return _to_unit(_orient(_channels(arr, path), orientation), path, "image", max_side)


def _tag(im: Image.Image, tag: int, default: int) -> int:
    """The first value of a TIFF tag (``default`` when absent or not a TIFF)."""
    value = getattr(im, "tag_v2", {}).get(tag, default)
    return value[0] if isinstance(value, tuple) else value


def _deep_colour(im: Image.Image, path: Path) -> bool:
    """True for colour images with more than 8 bits per sample, which Pillow would truncate to 8."""
    if im.mode in ("1", "L", "I", "F") or im.mode.startswith("I;16"):
        return False
    if im.format == "TIFF":
        bits = im.tag_v2.get(_BITS_PER_SAMPLE, (8,))
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


def _load_tiff_deep(path: Path, orientation: object, max_side: int | None) -> np.ndarray:
    """Colour TIFF with > 8 bits per sample, through tifffile when it is installed (tifffile does not
    apply the Orientation tag: ``orientation`` is read by Pillow)."""
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
        raise LoraIqaError(f"{path}: cannot read TIFF ({reason(e)})") from e
    return _to_unit(_orient(_channels(arr, path), orientation), path, "image", max_side)


def _read_dicom(path: Path) -> tuple[np.ndarray, pydicom.Dataset]:
    """The decoded pixel array (middle frame if multi-frame) and the dataset."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            not_image = _not_an_image(ds)
            if not_image:
                raise LoraIqaError(f"{path}: not an image to score: {not_image}")
            if not any(k in ds for k in _PIXEL_KEYWORDS):
                hint = "" if _has_dicm_magic(path) else " (and no 'DICM' header: is it DICOM at all?)"
                raise LoraIqaError(f"{path}: DICOM file has no pixel data{hint}")
            arr = _decoded_pixels(ds, path)
            frames = int(ds.get("NumberOfFrames") or 1)
            if frames > 1:
                arr = arr[frames // 2]
            if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
                arr = pydicom.pixels.apply_color_lut(arr, ds)
    except LoraIqaError:
        raise
    except Exception as e:
        raise LoraIqaError(f"{path}: cannot read DICOM ({reason(e)})") from e
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise LoraIqaError(f"{path}: DICOM image is empty or has unsupported shape {arr.shape}")
    _check_size(path, arr.shape[1], arr.shape[0])
    return arr, ds


def _decoded_pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """``ds.pixel_array``, decoded now: a failure (truncated or corrupt data, a codec that no installed
    plugin decodes) is one line naming the file, the transfer syntax (name and UID) and why."""
    try:
        return np.asarray(ds.pixel_array)
    except Exception as e:
        ts = pydicom.uid.UID((getattr(ds, "file_meta", None) or {}).get("TransferSyntaxUID") or "")
        syntax = (f"{ts.name} ({ts})" if ts.name != ts else ts) if ts else "(none in the file meta)"
        verb = "read" if not ts or ts in pydicom.uid.UncompressedTransferSyntaxes else "decode"
        why = _decode_reason(e)
        if ts == pydicom.uid.JPEGExtended12Bit and ds.get("BitsStored") != 8 and not importlib.util.find_spec("libjpeg"):
            why = '12-bit JPEG needs pylibjpeg-libjpeg (GPLv3, so not installed by default): pip install "lora_iqa[dicom-gpl]"'
        raise LoraIqaError(f"{path}: cannot {verb} pixel data in transfer syntax {syntax}: {why}") from e


def _decode_reason(e: Exception) -> str:
    """pydicom's decoding failure, short: each plugin's own error, or the plugins it would need."""
    first, *rest = [line.strip() for line in str(e).splitlines() if line.strip()] or [""]
    if rest and "missing dependencies" in first:  # no plugin installed for the codec
        return f"no decoder installed ({'; '.join(rest)})"
    if rest and first.startswith("Unable to decode as exceptions were raised"):  # then one "plugin: error" a line
        rest = [line.replace("'NoneType' object has no attribute 'encode'", "no image decoded") for line in rest]  # gdcm's
        return "; ".join(line if len(line) <= 200 else line[:197] + "..." for line in rest)
    return reason(e)


def _not_an_image(ds: pydicom.Dataset) -> str | None:
    """What a DICOM object is when it is no image to score (by SOP class, Modality, 1-bit pixels)."""
    modality = str(ds.get("Modality") or "").strip().upper()
    sop = str(ds.get("SOPClassUID") or (getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID") or "")
    sop_says = sop != _RT_IMAGE_STORAGE and any(sop == r or sop.startswith(r + ".") for r in _NOT_IMAGE_SOP_ROOTS)
    if sop_says or modality in _NOT_IMAGE_MODALITIES:
        name = pydicom.uid.UID(sop).name if sop else sop
        what = name if name != sop else _NOT_IMAGE_MODALITIES.get(modality, f"object of SOP class {sop}")
        return f"DICOM {what} (Modality {modality or 'absent'})"
    if ds.get("BitsAllocated") == 1:
        return f"1-bit DICOM (BitsAllocated 1): a binary mask (Modality {modality or 'absent'})"
    return None


def _to_hu(arr: np.ndarray, ds: pydicom.Dataset, path: Path) -> np.ndarray:
    try:
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
    except (TypeError, ValueError) as e:
        raise LoraIqaError(f"{path}: invalid RescaleSlope/RescaleIntercept ({reason(e)})") from e
    return (arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)


def _load_dicom(path: Path, window: tuple[float, float] | None, max_side: int | None) -> np.ndarray:
    arr, ds = _read_dicom(path)
    if arr.ndim == 3:  # colour (RGB, YBR converted to RGB by pydicom, or palette)
        arr = _channels(arr, path)
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            return _to_unit(arr, path, "DICOM image", max_side)
        bits = int(ds.get("BitsStored") or 8)
        return np.clip(_reduced(arr, max_side) / float(2**bits - 1), 0.0, 1.0).astype(np.float32)
    hu = _to_hu(_reduced(arr, max_side), ds, path)  # the rescale is linear: reducing first is exact
    out = apply_window(hu, window if window is not None else (_file_window(ds) or DEFAULT_WINDOW))
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


def pixel_spacing(path: str | os.PathLike, rows: int | None = None) -> float | None:
    """A DICOM file's pixel spacing in mm/px (mean of PixelSpacing's row and column spacing; else
    ImagerPixelSpacing), or None for other files or when it is absent or invalid. ``rows``: the height
    the image was loaded at (a box-reduced image's pixels are that much larger)."""
    path = Path(path)
    if not (path.suffix.lower() in DICOM_SUFFIXES or _has_dicm_magic(path)):
        return None
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
        mm = float(np.mean([float(v) for v in spacing])) if spacing else None
        file_rows = int(ds.get("Rows") or 0)
    except Exception:  # an unreadable header is reported when the pixels are read
        return None
    if not mm or not np.isfinite(mm) or mm <= 0:
        return None
    return mm * file_rows / rows if rows and file_rows else mm
