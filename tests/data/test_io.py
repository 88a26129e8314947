import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from lora_iqa.data.io import DEFAULT_WINDOW, load_image, read_dicom_hu
from lora_iqa.data.writers import to_rgb, write_dicom_ct, write_png16
from lora_iqa.errors import LoraIqaError

RNG = np.random.default_rng(0)


def _testdata(name: str) -> str:
    with warnings.catch_warnings():  # pydicom warns when it cannot download its optional extras
        warnings.simplefilter("ignore")
        return get_testdata_file(name)


# --- raster round trips ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, shape, dtype",
    [
        (".png", (17, 19), np.uint8),
        (".png", (17, 19), np.uint16),
        (".png", (17, 19, 3), np.uint8),
        (".tif", (17, 19), np.uint8),
        (".tif", (17, 19), np.uint16),
        (".tif", (17, 19, 3), np.uint8),
    ],
)
def test_pillow_round_trip_is_exact(tmp_path, suffix, shape, dtype):
    maxval = np.iinfo(dtype).max
    data = RNG.integers(0, maxval + 1, size=shape, dtype=dtype)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(data).save(path)
    out = load_image(path)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_allclose(out, data / maxval, atol=1e-7)


def test_tiff_16bit_rgb_keeps_16_bits(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    data = RNG.integers(0, 65536, size=(17, 18, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tiff", data)
    np.testing.assert_allclose(load_image(tmp_path / "rgb16.tiff"), data / 65535, atol=1e-7)


def test_float_tiff_overshoot_within_tolerance_is_clipped(tmp_path):
    data = np.tile(np.array([[-0.005, 0.25], [0.75, 1.005]], dtype=np.float32), (8, 8))
    Image.fromarray(data).save(tmp_path / "f.tif")
    np.testing.assert_allclose(load_image(tmp_path / "f.tif"), np.tile([[0, 0.25], [0.75, 1]], (8, 8)))


def test_float_tiff_outside_unit_range_is_refused(tmp_path):
    data = np.tile(np.array([[-0.5, 0.25], [0.75, 1.5]], dtype=np.float32), (8, 8))
    Image.fromarray(data).save(tmp_path / "f.tif")
    with pytest.raises(LoraIqaError, match=r"holds values -0.5..1.5, outside \[0, 1\]"):
        load_image(tmp_path / "f.tif")


@pytest.mark.parametrize("mode, channels", [("RGBA", 3), ("LA", None), ("P", 3)])
def test_alpha_and_palette_are_converted(tmp_path, mode, channels):
    Image.new(mode, (20, 17)).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    assert out.shape == ((17, 20, channels) if channels else (17, 20))


@pytest.mark.parametrize("shape", [(16, 24), (16, 24, 3)])
def test_jpeg_shape_and_values(tmp_path, shape):
    data = np.full(shape, 128, dtype=np.uint8)  # flat image: JPEG reproduces it almost exactly
    Image.fromarray(data).save(tmp_path / "x.jpg", quality=95)
    out = load_image(tmp_path / "x.jpg")
    assert out.shape == shape
    np.testing.assert_allclose(out, 128 / 255, atol=2 / 255)


def test_write_png16_round_trip(tmp_path):
    img = RNG.random((17, 19))
    write_png16(tmp_path / "a.png", img)
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode.startswith("I;16")
    np.testing.assert_allclose(load_image(tmp_path / "a.png"), img, atol=1 / 65535)
    assert sorted(os.listdir(tmp_path)) == ["a.png"]  # no temporary left behind


def test_to_rgb():
    g = RNG.random((3, 4)).astype(np.float32)
    assert to_rgb(g).shape == (3, 4, 3) and np.array_equal(to_rgb(g)[..., 2], g)
    assert to_rgb(g[..., None]).shape == (3, 4, 3)
    assert to_rgb(to_rgb(g)).shape == (3, 4, 3)


# --- DICOM -----------------------------------------------------------------------------------


def test_ct_small_hu_and_window():
    path = _testdata("CT_small.dcm")
    hu, ds = read_dicom_hu(path)
    assert hu.dtype == np.float32 and hu.shape == (128, 128)
    assert ds.Modality == "CT"
    assert hu.min() < -800 and hu.max() > 300  # air ... bone
    soft = load_image(path)
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    lo, width = DEFAULT_WINDOW[0] - DEFAULT_WINDOW[1] / 2, DEFAULT_WINDOW[1]
    np.testing.assert_allclose(soft, np.clip((hu - lo) / width, 0, 1), atol=1e-6)  # no window tags
    bone = load_image(path, window=(400, 1800))
    assert not np.allclose(soft, bone)


def test_dicom_without_suffix_is_detected(tmp_path):
    target = tmp_path / "slice"
    target.write_bytes(Path(_testdata("CT_small.dcm")).read_bytes())
    assert load_image(target).shape == (128, 128)


def test_write_dicom_ct_round_trip(tmp_path):
    hu = RNG.uniform(-1024, 2000, size=(16, 20))
    path = tmp_path / "ct.dcm"
    write_dicom_ct(path, hu, window=(50, 350), PatientID="phantom-1", PixelSpacing=[0.5, 0.5])
    back, ds = read_dicom_hu(path)
    np.testing.assert_allclose(back, hu, atol=1.0)
    assert ds.Modality == "CT" and ds.PatientID == "phantom-1"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16
    assert float(ds.WindowCenter) == 50 and float(ds.WindowWidth) == 350
    assert ds.StudyInstanceUID != ds.SeriesInstanceUID
    windowed = np.clip((back - (50 - 350 / 2)) / 350, 0, 1)
    np.testing.assert_allclose(load_image(path), windowed, atol=1e-6)  # the file's window is used
    assert sorted(os.listdir(tmp_path)) == ["ct.dcm"]


def test_monochrome1_is_inverted(tmp_path):
    path = tmp_path / "m1.dcm"
    write_dicom_ct(path, np.tile([[-1000.0, 40.0], [200.0, 1000.0]], (8, 8)))
    normal = load_image(path)
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    np.testing.assert_allclose(load_image(path), 1 - normal)


def test_colour_and_multiframe_dicom():
    out = load_image(_testdata("SC_rgb_rle_16bit_2frame.dcm"))
    assert out.shape == (100, 100, 3) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(LoraIqaError, match="colour DICOM"):
        read_dicom_hu(_testdata("SC_rgb_rle.dcm"))


BAD_DICOM = [
    "MR_truncated.dcm",  # pixel data shorter than declared
    "rtplan_truncated.dcm",  # truncated, and no pixel data
    "badVR.dcm",  # malformed value
    "no_meta.dcm",  # no file meta / DICM header
    "meta_missing_tsyntax.dcm",  # no transfer syntax
    "nested_priv_SQ.dcm",  # pixel data without Bits Allocated
    "rtplan.dcm",  # a valid file without pixel data
    "JPEG-lossy.dcm",  # a corrupt 12-bit JPEG scan (no decoder reads it; see test_io_dicom_codecs.py)
]


@pytest.mark.parametrize("name", BAD_DICOM)
def test_bad_dicom_raises_one_line_error(name):
    path = _testdata(name)
    for read in (load_image, read_dicom_hu):
        with pytest.raises(LoraIqaError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message and name in message


# --- failures --------------------------------------------------------------------------------


def _png16_rgb(path: Path) -> None:
    """A valid 16-bit RGB PNG, written by hand (Pillow cannot write one)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = 16, 17
    raw = b"".join(b"\0" + bytes(range(w * 6)) for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _truncated_png(path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, size=(64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-200])


@pytest.mark.parametrize(
    "name, make, expected",
    [
        ("cut.png", _truncated_png, "cannot read image"),
        ("noise.png", lambda p: p.write_bytes(np.random.default_rng(1).bytes(300)), "cannot read image"),
        ("empty.png", lambda p: p.write_bytes(b""), "cannot read image"),
        ("notes.txt", lambda p: p.write_text("hello"), "unsupported file type '.txt'"),
        ("noise.dcm", lambda p: p.write_bytes(np.random.default_rng(2).bytes(300)), "no pixel data"),
        ("rgb16.png", _png16_rgb, "16-bit colour PNG"),
        ("missing.png", lambda p: None, "file not found"),
        ("folder.png", lambda p: p.mkdir(), "not a file"),
    ],
)
def test_bad_files_raise_one_line_error(tmp_path, name, make, expected):
    path = tmp_path / name
    make(path)
    with pytest.raises(LoraIqaError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message
