"""Compressed DICOM: the project's own (permissively licensed) dependencies, GDCM and pylibjpeg-openjpeg,
decode every codec pydicom's bundled test files use, to the pixels of the uncompressed file, but 12-bit
JPEG Extended, which only the GPLv3 pylibjpeg-libjpeg of the ``dicom-gpl`` extra decodes (its tests
skip without it); what still cannot be decoded is one line naming the file and the transfer syntax (and,
for 12-bit JPEG, the extra). Reference values marked "pydicom's reference" are those of pydicom's own
tests (tests/pixels/pixels_reference.py) for files whose uncompressed version is not bundled."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from lora_iqa.data.io import load_image, read_dicom_hu
from lora_iqa.errors import LoraIqaError


def _testdata(name: str) -> str:
    with warnings.catch_warnings():  # pydicom warns when it cannot download its optional extras
        warnings.simplefilter("ignore")
        return get_testdata_file(name)


def _read(path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _one_line_error(path, *expected: str) -> str:
    """The error of reading ``path`` by both readers: one line, naming the file first."""
    for read in (load_image, read_dicom_hu):
        with pytest.raises(LoraIqaError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{path}: ")
        for text in expected:
            assert text in message
    return message


# --- the bundled compressed CT and MR files ----------------------------------------------------

# MR_small.dcm in three lossless codecs: every pixel, in HU and windowed, equals the uncompressed file's
@pytest.mark.parametrize(
    "name, syntax",
    [
        ("MR_small_RLE.dcm", RLELossless),
        ("MR_small_jp2klossless.dcm", JPEG2000Lossless),
        ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    ],
)
def test_bundled_lossless_mr_equals_the_uncompressed_file(name, syntax):
    path, reference = _testdata(name), _testdata("MR_small.dcm")
    hu, ds = read_dicom_hu(path)
    assert ds.file_meta.TransferSyntaxUID == syntax and ds.Modality == "MR"
    np.testing.assert_array_equal(hu, read_dicom_hu(reference)[0])
    np.testing.assert_array_equal(load_image(path), load_image(reference))


def test_bundled_j2k_ct_with_unsigned_codestream_reads_signed_hu():
    # J2K_pixelrep_mismatch.dcm: an unsigned 13-bit codestream in a signed (PixelRepresentation 1) CT;
    # read unsigned, its -2000 padding would be 6192. Values: pydicom's reference (slope 1, intercept 0).
    hu, ds = read_dicom_hu(_testdata("J2K_pixelrep_mismatch.dcm"))
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless and ds.Modality == "CT" and hu.shape == (512, 512)
    assert hu[0, 0] == -2000
    assert hu[47:57, 279].tolist() == [621, 412, 138, -193, -520, -767, -907, -966, -988, -995]
    assert hu[328:338, 106].tolist() == [-377, -121, 141, 383, 633, 910, 1198, 1455, 1638, 1732]


@pytest.mark.parametrize("name", ["693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm"])
def test_bundled_j2k_ct_decodes_alike_in_all_j2k_plugins(name):
    # No uncompressed copy is bundled (693_UNCI.dcm is in pydicom-data): the three JPEG 2000 decoders the
    # dependencies give pydicom (GDCM, Pillow, pylibjpeg-openjpeg) agree pixel for pixel, and load_image uses them
    arrays = []
    for plugin in ("gdcm", "pillow", "pylibjpeg"):
        ds = _read(_testdata(name))
        ds.pixel_array_options(decoding_plugin=plugin)
        arrays.append(ds.pixel_array)
    for array in arrays[1:]:
        np.testing.assert_array_equal(array, arrays[0])
    hu, ds = read_dicom_hu(_testdata(name))
    assert ds.Modality == "CT" and ds.file_meta.TransferSyntaxUID in (JPEG2000, JPEG2000Lossless)
    np.testing.assert_array_equal(hu, arrays[0] * float(ds.RescaleSlope) + float(ds.RescaleIntercept))


def test_every_bundled_ct_and_mr_file_with_pixels_loads():
    # what benchmarks/scripts/dicom_decode.py reports: every bundled CT/MR file with pixel data loads,
    # but MR_truncated.dcm, whose pixel data pydicom cut short on purpose
    failed, loaded = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in map(Path, get_testdata_files()):
            try:
                ds = pydicom.dcmread(path, force=True, defer_size=1024)
            except Exception:
                continue
            if "PixelData" not in ds or ds.get("Modality") not in ("CT", "MR"):
                continue
            try:
                img = load_image(path)
            except LoraIqaError as e:
                failed[path.name] = str(e)
                continue
            assert img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1
            loaded.append(ds.file_meta.TransferSyntaxUID)
    assert list(failed) == ["MR_truncated.dcm"], failed
    assert "cannot read pixel data in transfer syntax Explicit VR Little Endian (1.2.840.10008.1.2.1)" in failed["MR_truncated.dcm"]
    assert {JPEG2000, JPEG2000Lossless, JPEGLSLossless, RLELossless} <= set(loaded)


# --- CT_small.dcm re-encoded by pydicom and by GDCM ----------------------------------------------


@pytest.mark.parametrize(
    "syntax, options, max_hu_error",
    [
        (RLELossless, {}, 0),
        (JPEG2000Lossless, {}, 0),
        (JPEG2000, {"j2k_cr": [10]}, 100),  # lossy, 10:1 (a max error of 63 HU, mean 8, when written)
        (DeflatedExplicitVRLittleEndian, None, 0),
    ],
)
def test_ct_small_re_encoded_reads_as_the_original(tmp_path, syntax, options, max_hu_error):
    ds = _read(_testdata("CT_small.dcm"))
    if options is None:  # deflate is a transfer syntax of the whole data set, not a pixel codec
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax, **options)
    path = tmp_path / "ct.dcm"
    ds.save_as(path)
    hu, back = read_dicom_hu(path)
    assert back.file_meta.TransferSyntaxUID == syntax
    reference = read_dicom_hu(_testdata("CT_small.dcm"))[0]
    error = np.abs(hu - reference)
    assert error.max() <= max_hu_error and error.mean() <= max_hu_error / 5
    if max_hu_error == 0:
        np.testing.assert_array_equal(load_image(path), load_image(_testdata("CT_small.dcm")))


@pytest.mark.parametrize("syntax", [JPEGLosslessSV1, JPEGLossless, JPEGLSLossless])
def test_ct_small_re_encoded_by_gdcm_reads_as_the_original(tmp_path, syntax):
    # JPEG lossless SV1 is what hospital archives most often store; pydicom encodes none of these three
    # (JPEG-LS only with pyjpegls), so GDCM writes them: a signed 16-bit CT, every HU exact
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(_testdata("CT_small.dcm"))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(syntax))))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    writer.SetFileName(str(tmp_path / "ct.dcm"))
    assert writer.Write()
    hu, back = read_dicom_hu(tmp_path / "ct.dcm")
    assert back.file_meta.TransferSyntaxUID == syntax and back.PixelRepresentation == 1
    np.testing.assert_array_equal(hu, read_dicom_hu(_testdata("CT_small.dcm"))[0])
    np.testing.assert_array_equal(load_image(tmp_path / "ct.dcm"), load_image(_testdata("CT_small.dcm")))


# --- the codecs no bundled CT/MR file uses, on other bundled files --------------------------------


@pytest.mark.parametrize(
    "name, relabel, max_error",
    [
        ("SC_rgb_jpeg_gdcm.dcm", None, 0),  # JPEG lossless, first-order prediction (SV1)
        ("SC_rgb_jpeg_gdcm.dcm", JPEGLossless, 0),  # its SV1 stream is a valid Process 14 stream too
        ("SC_rgb_dcmtk_+eb+cr.dcm", None, 2),  # JPEG baseline, RGB (no subsampling): GDCM and Pillow alike
        ("SC_rgb_jls_lossy_sample.dcm", None, 2),  # JPEG-LS near-lossless (NEAR 2)
        ("SC_rgb_gdcm_KY.dcm", None, 0),  # JPEG 2000 (8-bit RGB)
    ],
)
def test_other_codecs_match_the_lossless_copy_of_the_same_image(tmp_path, name, relabel, max_error):
    # the same 100 x 100 test pattern ships RLE-compressed (lossless) as SC_rgb_rle.dcm
    path = _testdata(name)
    if relabel is not None:
        ds = _read(path)
        ds.file_meta.TransferSyntaxUID = relabel
        path = tmp_path / name
        ds.save_as(path)
    rgb = np.rint(load_image(path) * 255)
    reference = np.rint(load_image(_testdata("SC_rgb_rle.dcm")) * 255)
    assert rgb.shape == reference.shape == (100, 100, 3)
    assert np.abs(rgb - reference).max() <= max_error


def test_twelve_bit_jpeg_extended_with_the_gpl_extra_gives_pydicoms_reference_values():
    pytest.importorskip("libjpeg")  # pylibjpeg-libjpeg, the dicom-gpl extra: the only 12-bit JPEG decoder
    hu, ds = read_dicom_hu(_testdata("JPGExtended.dcm"))  # NM, 12 bits
    assert ds.file_meta.TransferSyntaxUID == JPEGExtended12Bit and ds.BitsStored == 12
    assert hu[420, 140] == 244 and hu[230, 120] == 95


def test_deflate_gives_pydicoms_reference_values():
    hu, ds = read_dicom_hu(_testdata("image_dfl.dcm"))
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert hu[10].min() == 41 and hu[10].max() == 255
    assert hu[300, 255:263].tolist() == [138, 65, 65, 65, 65, 35, 35, 35]


# --- what cannot be decoded ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_twelve_bit_jpeg_extended_without_the_gpl_extra_names_the_extra(monkeypatch, name):
    # as without pylibjpeg-libjpeg (whether or not it is installed here): GDCM and Pillow refuse 12-bit JPEG
    monkeypatch.setitem(sys.modules, "libjpeg", None)  # find_spec("libjpeg") is None, import fails
    decoder = pydicom.pixels.get_decoder(JPEGExtended12Bit)
    monkeypatch.setattr(decoder, "_available", {k: v for k, v in decoder._available.items() if k != "pylibjpeg"})
    _one_line_error(
        _testdata(name),
        ": cannot decode pixel data in transfer syntax JPEG Extended (Process 2 and 4) (1.2.840.10008.1.2.4.51): "
        '12-bit JPEG needs pylibjpeg-libjpeg (GPLv3, so not installed by default): pip install "lora_iqa[dicom-gpl]"',
    )


def test_corrupt_bundled_jpeg_names_file_and_transfer_syntax():
    # JPEG-lossy.dcm: a 12-bit JPEG whose scan header is invalid (pydicom ships JPGExtended.dcm as its fix)
    pytest.importorskip("libjpeg")  # without it, the line names the dicom-gpl extra (the test above)
    message = _one_line_error(
        _testdata("JPEG-lossy.dcm"),
        ": cannot decode pixel data in transfer syntax JPEG Extended (Process 2 and 4) (1.2.840.10008.1.2.4.51): ",
        "pylibjpeg: ",
    )
    assert "Unable to decode" not in message and "dicom-gpl" not in message  # each plugin's own reason


def test_corrupt_j2k_written_to_disk_names_file_and_transfer_syntax(tmp_path):
    ds = _read(_testdata("MR_small_jp2klossless.dcm"))
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    garbage = frame[:4] + bytes(len(frame) - 4)  # the J2K SOC and SIZ markers, then zeros
    ds.PixelData = pydicom.encaps.encapsulate([garbage])
    path = tmp_path / "broken j2k.dcm"
    ds.save_as(path)
    _one_line_error(
        path,
        "cannot decode pixel data in transfer syntax JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90): ",
        "gdcm: no image decoded; ",  # not pydicom's "'NoneType' object has no attribute 'encode'"
        "pylibjpeg: Error decoding the J2K data: failed to read the header",
    )


def test_codec_without_an_installed_plugin_says_what_to_install(monkeypatch):
    # as if python-gdcm were not installed: pydicom has no JPEG-LS decoder left
    decoder = pydicom.pixels.get_decoder(JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"gdcm": ("gdcm>=3.0.10",)})
    _one_line_error(
        _testdata("MR_small_jpeg_ls_lossless.dcm"),
        "cannot decode pixel data in transfer syntax JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80): "
        "no decoder installed (gdcm - requires gdcm>=3.0.10)",
    )


def test_quiet_keeps_pydicoms_plugin_tracebacks_off_stderr():
    # pydicom logs each failing plugin's traceback at ERROR: shown once an application configures logging
    code = (
        "import logging, sys; logging.basicConfig()\n"
        "from lora_iqa.logs import quiet; quiet()\n"
        "from lora_iqa.data.io import load_image\n"
        "try: load_image(sys.argv[1])\n"
        "except Exception as e: print(e)\n"
    )
    path = _testdata("JPEG-lossy.dcm")  # every plugin fails in Python: no codec library writes to stderr
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith(f"{path}: cannot decode pixel data") and done.stderr == ""
