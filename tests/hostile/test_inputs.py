"""Hostile: inputs that are silently wrong, not images, too small, too large, or whose paths break
the OS calls (issue 14, classes 8 (inputs), 9 and 10 (one image)).

Every refusal is one :class:`LoraIqaError` line naming the file (and the manifest's line and column);
through the CLI it is one ``lora-iqa: error:`` line and exit 1, never a traceback."""

from __future__ import annotations

import os
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import one_error_line
from PIL import Image, ImageOps
from pydicom.data import get_testdata_file

from lora_iqa.cli.main import main
from lora_iqa.data import io
from lora_iqa.data.io import load_image, read_dicom_hu
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.writers import write_dicom_ct
from lora_iqa.errors import LoraIqaError

ORIENTATION = 0x0112  # the EXIF / TIFF Orientation tag
MIN_SIDE = 16  # the documented minimum side in pixels (io.MIN_SIDE)


def _refused(path, *words: str) -> str:
    """``load_image(path)`` raises one LoraIqaError line naming ``path`` and every word."""
    with pytest.raises(LoraIqaError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    for w in words:
        assert w in message, (w, message)
    return message


def _score_cli(llm, *argv: str) -> int:
    """``lora-iqa score ... --method mllm --scorer openai`` against the local stand-in server (no
    adapter; a refused image fails before any request is made)."""
    server = llm()
    code = main(["score", *argv, "--method", "mllm", "--scorer", "openai"])
    assert not server.requests
    return code


def _testdata(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_testdata_file(name)


def _gradient(h: int, w: int, channels: int = 0) -> np.ndarray:
    """A uint8 test pattern (a ramp across, a gentle one down, shifted per channel; uint8 sums wrap
    at 256) that PNG compresses fast, built without full-size int64 grids."""
    down = (np.arange(h) * 7 // max(h, 1)).astype(np.uint8)[:, None]
    across = [((np.arange(w) * 255 // max(w - 1, 1) + c * 85) % 256).astype(np.uint8)[None, :]
              for c in range(max(channels, 1))]
    planes = [a + down for a in across]
    return np.stack(planes, axis=-1) if channels else planes[0]


def _box(arr: np.ndarray, f: int) -> np.ndarray:
    """Reference box reduction: the mean of each f x f block; partial blocks at the right and bottom
    edges are averaged over the pixels they hold."""
    h, w = arr.shape[:2]
    rows, cols = np.arange(0, h, f), np.arange(0, w, f)
    sums = np.add.reduceat(np.add.reduceat(arr, rows, axis=0, dtype=np.float64), cols, axis=1)
    n = np.diff(rows, append=h)[:, None] * np.diff(cols, append=w)[None, :]
    return sums / n.reshape(n.shape + (1,) * (arr.ndim - 2))


# --- class 9: silently wrong input ---------------------------------------------------------------


def test_float_tiff_holding_hu_is_refused_not_clipped(tmp_path, llm, capsys):
    hu = np.linspace(-1024, 3071, 64 * 64, dtype=np.float32).reshape(64, 64)
    path = tmp_path / "hu_float.tif"
    Image.fromarray(hu, mode="F").save(path)
    message = _refused(path, "-1024", "3071", "outside [0, 1]", "HU")
    assert message.count(str(path)) == 1
    assert _score_cli(llm, str(path)) == 1
    one_error_line(capsys, path, "outside [0, 1]")


def test_float_tiff_in_unit_range_is_used_as_is(tmp_path):
    data = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    data[0, 0], data[0, 1] = -1e-4, 1 + 1e-4  # float rounding at the ends is tolerated (and clipped)
    Image.fromarray(data, mode="F").save(tmp_path / "unit.tif")
    out = load_image(tmp_path / "unit.tif")
    np.testing.assert_array_equal(out, np.clip(data, 0, 1))


def test_signed_16bit_tiff_is_named_signed_16bit(tmp_path, llm, capsys):
    tifffile = pytest.importorskip("tifffile")
    hu = np.linspace(-1024, 3071, 32 * 32).astype(np.int16).reshape(32, 32)
    path = tmp_path / "hu_int16.tif"
    tifffile.imwrite(path, hu)
    message = _refused(path, "signed 16-bit", "-1024", "3071", "HU")
    assert "32-bit" not in message
    assert _score_cli(llm, str(path)) == 1
    line = one_error_line(capsys, path, "signed 16-bit")
    assert "32-bit" not in line


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_of_png_is_applied(tmp_path, orientation):
    data = _gradient(20, 36)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(data).save(path, exif=exif)
    with Image.open(path) as im:
        want = np.asarray(ImageOps.exif_transpose(im)) / 255
    out = load_image(path)
    assert out.shape == want.shape == ((36, 20) if orientation >= 5 else (20, 36))
    np.testing.assert_allclose(out, want, atol=1e-7)


def test_exif_orientation_of_jpeg_is_applied(tmp_path):
    yy, xx = np.mgrid[0:40, 0:64]
    data = np.stack([xx * 4, yy * 6, np.full_like(xx, 128)], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # a phone held upright: rotate 90 degrees clockwise to view
    path = tmp_path / "phone.jpg"
    Image.fromarray(data).save(path, exif=exif, quality=100)
    out = load_image(path)
    assert out.shape == (64, 40, 3)
    assert np.abs(out - np.rot90(data, -1) / 255).mean() < 2 / 255
    assert np.abs(out - np.rot90(data, 1) / 255).mean() > 20 / 255  # the other way round is far off


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_tiff_orientation_is_applied_once_and_correctly(tmp_path, orientation):
    """A 16-bit TIFF with an Orientation tag (uncompressed: the case Pillow's memory map got wrong)."""
    tifffile = pytest.importorskip("tifffile")
    data = (np.arange(24 * 40, dtype=np.uint16).reshape(24, 40) * 61).astype(np.uint16)
    path = tmp_path / f"o{orientation}.tif"
    tifffile.imwrite(path, data, extratags=[(ORIENTATION, 3, 1, orientation, True)])
    want = {3: np.rot90(data, 2), 6: np.rot90(data, -1), 8: np.rot90(data, 1)}[orientation] / 65535
    np.testing.assert_allclose(load_image(path), want, atol=1e-7)


def _dicom_variant(path: Path, modality: str, sop_class: str, bits: int = 16) -> Path:
    """A CT-like DICOM written by ``write_dicom_ct``, then relabelled (and re-encoded at ``bits``)."""
    write_dicom_ct(path, np.linspace(-1000, 1000, 32 * 32).reshape(32, 32))
    ds = pydicom.dcmread(path)
    ds.Modality = modality
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    if bits == 1:
        mask = (np.arange(32 * 32).reshape(32, 32) % 3 == 0).astype(np.uint8)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
        ds.PixelData = pydicom.pixels.pack_bits(mask)
    elif bits == 8:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = np.full((32, 32), 200, np.uint8).tobytes()
    ds.save_as(path)
    return path


NOT_IMAGES = {
    "seg_real.dcm": (lambda p: Path(_testdata("liver_1frame.dcm")), "Segmentation"),
    "seg_fractional.dcm": (lambda p: _dicom_variant(p, "SEG", pydicom.uid.SegmentationStorage, bits=8), "Segmentation"),
    "rtdose_real.dcm": (lambda p: Path(_testdata("rtdose.dcm")), "RT Dose"),
    "rtdose.dcm": (lambda p: _dicom_variant(p, "RTDOSE", pydicom.uid.RTDoseStorage), "RT Dose"),
    "rtstruct_real.dcm": (lambda p: Path(_testdata("rtstruct.dcm")), "RT Structure Set"),
    "pr.dcm": (lambda p: _dicom_variant(p, "PR", pydicom.uid.GrayscaleSoftcopyPresentationStateStorage),
               "Presentation State"),
    "mask_1bit_sc.dcm": (lambda p: _dicom_variant(p, "OT", pydicom.uid.SecondaryCaptureImageStorage, bits=1),
                         "1-bit"),
}


@pytest.mark.parametrize("name", NOT_IMAGES)
def test_dicom_that_is_not_an_image_is_refused(tmp_path, name):
    make, what = NOT_IMAGES[name]
    path = make(tmp_path / name)
    for read in (load_image, read_dicom_hu):
        with pytest.raises(LoraIqaError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and what in message, message
        assert "not an image" in message


def test_dicom_segmentation_through_the_cli(tmp_path, llm, capsys):
    seg = _dicom_variant(tmp_path / "seg.dcm", "SEG", pydicom.uid.SegmentationStorage, bits=1)
    assert _score_cli(llm, str(seg)) == 1
    one_error_line(capsys, seg, "Segmentation", "not an image")


@pytest.mark.parametrize("modality, sop_class", [
    ("CT", pydicom.uid.CTImageStorage),
    ("MR", pydicom.uid.MRImageStorage),
    ("CR", pydicom.uid.ComputedRadiographyImageStorage),
    ("DX", pydicom.uid.DigitalXRayImageStorageForPresentation),
    ("OT", pydicom.uid.SecondaryCaptureImageStorage),
])
def test_ordinary_dicom_images_still_load(tmp_path, modality, sop_class):
    path = _dicom_variant(tmp_path / f"{modality}.dcm", modality, sop_class)
    assert load_image(path).shape == (32, 32)


@pytest.mark.parametrize("size", [(1, 1), (MIN_SIDE - 1, 64), (64, MIN_SIDE - 1)])
def test_tiny_png_is_refused(tmp_path, size):
    w, h = size
    path = tmp_path / f"tiny_{w}x{h}.png"
    Image.new("RGB", (w, h), (255, 255, 255)).save(path)
    _refused(path, f"{w}x{h}", f"{MIN_SIDE}")


def test_tiny_dicom_is_refused_and_minimum_size_loads(tmp_path, llm, capsys):
    write_dicom_ct(tmp_path / "one.dcm", np.zeros((1, 1)))
    _refused(tmp_path / "one.dcm", "1x1", f"{MIN_SIDE}")
    Image.new("L", (1, 1), 255).save(tmp_path / "one.png")
    assert _score_cli(llm, str(tmp_path / "one.png")) == 1
    one_error_line(capsys, tmp_path / "one.png", "1x1")
    Image.new("L", (MIN_SIDE, MIN_SIDE), 255).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png").shape == (MIN_SIDE, MIN_SIDE)


def test_min_side_is_the_documented_16_px():
    assert io.MIN_SIDE == MIN_SIDE


def test_one_bit_png_mask_is_refused(tmp_path):
    Image.new("1", (32, 32), 1).save(tmp_path / "mask.png")
    _refused(tmp_path / "mask.png", "1-bit", "mask")


# --- class 8: paths that break the OS calls, and a comma-only manifest ----------------------------


def _manifest(root: Path, image: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "manifest.csv"
    path.write_text(f"image,split,content,overall\n{image},train,c0,2\n")
    return path


def _manifest_refused(path: Path, *words: str) -> str:
    with pytest.raises(LoraIqaError) as info:
        read_manifest(path, ["overall"])
    message = str(info.value)
    assert "\n" not in message and "\0" not in message and message.startswith(str(path)), message
    for w in words:
        assert w in message, (w, message)
    return message


@pytest.mark.parametrize("text", [",,,\n,,,\n", ",\n", " , ,\n,,\n\n"])
def test_comma_only_manifest(tmp_path, text):
    path = tmp_path / "commas.csv"
    path.write_text(text)
    _manifest_refused(path, "header")


def test_comma_only_manifest_through_the_cli(tmp_path, llm, capsys):
    Image.new("L", (32, 32), 128).save(tmp_path / "ok.png")
    (tmp_path / "commas.csv").write_text(",,,\n,,,\n")
    assert _score_cli(llm, str(tmp_path / "ok.png"), "--strategy", "in_context",
                      "--data", str(tmp_path / "commas.csv")) == 1
    one_error_line(capsys, tmp_path / "commas.csv")


def test_nul_byte_in_manifest_path(tmp_path):
    path = _manifest(tmp_path, "a\0b.png")
    _manifest_refused(path, ":2:", "column 'image'", "null")


def test_symlink_loop_in_manifest_path(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    _manifest_refused(_manifest(tmp_path, "loop/x.png"), ":2:", "column 'image'", "symbolic link")


def test_overlong_component_in_manifest_path(tmp_path):
    _manifest_refused(_manifest(tmp_path, "a" * 300 + ".png"), ":2:", "column 'image'", "too long")


def test_path_longer_than_path_max_in_manifest(tmp_path):
    _manifest_refused(_manifest(tmp_path, "d/" * 2100 + "x.png"), ":2:", "column 'image'", "too long")


def test_overlong_manifest_path_itself(tmp_path):
    path = tmp_path / ("m" * 300 + ".csv")
    _manifest_refused(path, "too long")


def test_load_image_symlink_loop_and_nul_and_long_names(tmp_path, llm, capsys):
    os.symlink("loop.png", tmp_path / "loop.png")
    _refused(tmp_path / "loop.png", "symbolic link")
    with pytest.raises(LoraIqaError) as info:
        load_image(str(tmp_path / "a\0b.png"))
    assert "\0" not in str(info.value) and "null" in str(info.value)
    long_name = tmp_path / ("x" * 300 + ".png")
    _refused(long_name, "too long")
    _refused(tmp_path / ("d/" * 2100 + "x.png"), "too long")
    assert _score_cli(llm, str(long_name)) == 1
    one_error_line(capsys, long_name, "too long")


# --- class 10 (one image): max_side reduces before the float copy ----------------------------------


@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> tuple[Path, np.ndarray]:
    data = _gradient(4000, 6000, channels=3)
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.fromarray(data).save(path, compress_level=1)
    return path, data


def test_max_side_reduces_a_large_png(big_png):
    path, data = big_png
    out = load_image(path, max_side=1024)
    assert out.dtype == np.float32 and max(out.shape[:2]) <= 1024
    assert out.shape == (667, 1000, 3)  # factor 6: the smallest integer bringing 6000 to <= 1024
    np.testing.assert_allclose(out, _box(data, 6) / 255, atol=0.5 / 255 + 1e-6)  # Pillow rounds to 8 bits


def test_max_side_makes_no_full_size_float_copy(big_png):
    """numpy's allocations (traced by tracemalloc; Pillow's decoded image is not) stay near the
    reduced image's size: a full-size float32 copy of this image would be 288 MB."""
    path, _ = big_png
    tracemalloc.start()
    try:
        out = load_image(path, max_side=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * out.nbytes < 4000 * 6000 * 3 * 4 / 10


def test_max_side_none_and_large_enough_keep_the_image_whole(tmp_path):
    data = _gradient(40, 50, channels=3)
    Image.fromarray(data).save(tmp_path / "x.png")
    whole = load_image(tmp_path / "x.png")
    np.testing.assert_array_equal(whole, data / np.float32(255))
    np.testing.assert_array_equal(load_image(tmp_path / "x.png", max_side=50), whole)


@pytest.mark.parametrize("shape", [(47, 73), (47, 73, 3)])
def test_max_side_16bit_matches_box_reduction_and_8bit_path(tmp_path, shape):
    """16-bit (which Pillow cannot reduce) and 8-bit go different ways; both are the same box mean,
    partial boxes at the edges included."""
    tifffile = pytest.importorskip("tifffile")
    data8 = _gradient(*shape[:2], channels=shape[2] if len(shape) == 3 else 0)
    data16 = data8.astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "x16.tif", data16)
    Image.fromarray(data8).save(tmp_path / "x8.png")
    out16 = load_image(tmp_path / "x16.tif", max_side=16)
    out8 = load_image(tmp_path / "x8.png", max_side=16)
    want = _box(data16 / 65535, 5)  # 73 -> 15 <= 16 (4 would give 19); partial boxes at both edges
    assert out16.shape == out8.shape == want.shape
    np.testing.assert_allclose(out16, want, atol=1e-6)
    np.testing.assert_allclose(out8, want, atol=0.5 / 255 + 1e-6)


def test_max_side_jpeg_uses_draft_and_stays_close(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    drafts = []
    draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda im, mode, size: drafts.append(size) or draft(im, mode, size))
    data = _gradient(1200, 1800, channels=3)
    Image.fromarray(data).save(tmp_path / "x.jpg", quality=95)
    out = load_image(tmp_path / "x.jpg", max_side=256)
    assert drafts == [(225, 150)]  # DCT scaling to 1/8 while decoding
    assert out.shape == (150, 225, 3)
    f = 1800 // out.shape[1]
    assert abs(np.mean(out) - np.mean(data) / 255) < 0.01
    assert np.abs(out - _box(data, f)[:out.shape[0], :out.shape[1]] / 255).mean() < 0.03


def test_max_side_dicom_reduces_hu_then_windows(tmp_path):
    hu = np.linspace(-1000, 1000, 100 * 60).reshape(100, 60)
    write_dicom_ct(tmp_path / "ct.dcm", hu, window=(0, 2000))
    out = load_image(tmp_path / "ct.dcm", max_side=32)
    assert out.shape == (25, 15)  # factor 4
    want = np.clip((_box(np.round(hu), 4) + 1000) / 2000, 0, 1)
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_max_side_applies_orientation_after_reducing(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(_gradient(100, 300)).save(tmp_path / "o.png", exif=exif)
    assert load_image(tmp_path / "o.png", max_side=100).shape == (100, 34)


@pytest.mark.parametrize("bad", [0, -5, MIN_SIDE - 1, 2.5, True])
def test_max_side_must_be_an_integer_of_at_least_min_side(tmp_path, bad):
    Image.new("L", (32, 32)).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="max_side"):
        load_image(tmp_path / "x.png", max_side=bad)
