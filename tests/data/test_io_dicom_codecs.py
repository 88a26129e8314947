"""Compressed DICOM: the permissive dependencies (GDCM, pylibjpeg-openjpeg) decode every codec of pydicom's bundled test
files to the uncompressed file's pixels, but 12-bit JPEG Extended (only the GPLv3 ``dicom-gpl`` extra: its tests skip without
it); what cannot be decoded is one line naming file and transfer syntax. "pydicom's reference": its tests' pixels_reference.py."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.uid import (DeflatedExplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGExtended12Bit, JPEGLossless,
                         JPEGLosslessSV1, JPEGLSLossless, RLELossless)

from lora_iqa.data.io import load_image, read_dicom_hu
from lora_iqa.errors import LoraIqaError

# pydicom warns when it cannot download its optional extras, and about the test files' invalid values
pytestmark = pytest.mark.filterwarnings("ignore")
JPEG_EXTENDED = "cannot decode pixel data in transfer syntax JPEG Extended (Process 2 and 4) (1.2.840.10008.1.2.4.51): "
NEEDS_GPL = '12-bit JPEG needs pylibjpeg-libjpeg (GPLv3, so not installed by default): pip install "lora_iqa[dicom-gpl]"'


def _one_line_error(path, *expected: str) -> str:
    """The error of reading ``path`` by both readers: one line, naming the file first."""
    for read in (load_image, read_dicom_hu):
        with pytest.raises(LoraIqaError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{path}: ")
        assert all(text in message for text in expected), message
    return message


def _same_as(path, reference: str) -> None:
    """Every pixel, in HU and windowed, equals the bundled ``reference`` file's."""
    np.testing.assert_array_equal(read_dicom_hu(path)[0], read_dicom_hu(get_testdata_file(reference))[0])
    np.testing.assert_array_equal(load_image(path), load_image(get_testdata_file(reference)))


@pytest.mark.parametrize("name, syntax", [("MR_small_RLE.dcm", RLELossless), ("MR_small_jp2klossless.dcm", JPEG2000Lossless),
                                          ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless)])
def test_bundled_lossless_mr_equals_the_uncompressed_file(name, syntax):
    ds = read_dicom_hu(get_testdata_file(name))[1]
    assert ds.file_meta.TransferSyntaxUID == syntax and ds.Modality == "MR"
    _same_as(get_testdata_file(name), "MR_small.dcm")


def test_bundled_j2k_ct_decodes_alike_in_all_j2k_plugins_and_reads_signed_hu():
    # no uncompressed copy is bundled (693_UNCI.dcm is in pydicom-data): the three JPEG 2000 decoders the
    # dependencies give pydicom agree pixel for pixel, and load_image uses them
    for name in ("693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm"):
        arrays = [pydicom.pixels.pixel_array(get_testdata_file(name), decoding_plugin=p)
                  for p in ("gdcm", "pillow", "pylibjpeg")]
        assert all(np.array_equal(array, arrays[0]) for array in arrays[1:])
        hu, ds = read_dicom_hu(get_testdata_file(name))
        assert ds.Modality == "CT" and ds.file_meta.TransferSyntaxUID in (JPEG2000, JPEG2000Lossless)
        np.testing.assert_array_equal(hu, arrays[0] * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    # J2K_pixelrep_mismatch.dcm: an unsigned 13-bit codestream in a signed (PixelRepresentation 1) CT: read unsigned,
    # its -2000 padding would be 6192. Values: pydicom's reference (slope 1, intercept 0).
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless and hu.shape == (512, 512) and hu[0, 0] == -2000
    assert hu[47:57, 279].tolist() == [621, 412, 138, -193, -520, -767, -907, -966, -988, -995]
    assert hu[328:338, 106].tolist() == [-377, -121, 141, 383, 633, 910, 1198, 1455, 1638, 1732]


def test_every_bundled_ct_and_mr_file_with_pixels_loads():
    # what benchmarks/scripts/dicom_decode.py reports: all load but MR_truncated.dcm, cut short on purpose
    failed, loaded = {}, []
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
        else:
            assert img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1
            loaded.append(ds.file_meta.TransferSyntaxUID)
    assert list(failed) == ["MR_truncated.dcm"], failed
    assert "cannot read pixel data in transfer syntax Explicit VR Little Endian (1.2.840.10008.1.2.1)" in failed["MR_truncated.dcm"]
    assert {JPEG2000, JPEG2000Lossless, JPEGLSLossless, RLELossless} <= set(loaded)


@pytest.mark.parametrize("syntax, encoder, max_hu_error", [
    (RLELossless, {}, 0), (JPEG2000Lossless, {}, 0),
    (JPEG2000, {"j2k_cr": [10]}, 100),  # lossy, 10:1 (a max error of 63 HU, mean 8, when written)
    (DeflatedExplicitVRLittleEndian, "relabel", 0),  # deflate: a transfer syntax of the whole data set, no pixel codec
    # JPEG lossless SV1 is what hospital archives most often store: pydicom encodes none of these three, GDCM does
    (JPEGLosslessSV1, "gdcm", 0), (JPEGLossless, "gdcm", 0), (JPEGLSLossless, "gdcm", 0),
])
def test_ct_small_re_encoded_reads_as_the_original(tmp_path, syntax, encoder, max_hu_error):
    path = tmp_path / "ct.dcm"
    if encoder == "gdcm":
        import gdcm

        reader, change, writer = gdcm.ImageReader(), gdcm.ImageChangeTransferSyntax(), gdcm.ImageWriter()
        reader.SetFileName(get_testdata_file("CT_small.dcm"))
        assert reader.Read()
        change.SetInput(reader.GetImage()), change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(syntax)))
        assert change.Change()
        writer.SetFile(reader.GetFile()), writer.SetImage(change.GetOutput()), writer.SetFileName(str(path))
        assert writer.Write()
    else:
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        if encoder == "relabel":
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax, **encoder)
        ds.save_as(path)
    hu, back = read_dicom_hu(path)
    assert back.file_meta.TransferSyntaxUID == syntax and back.PixelRepresentation == 1  # a signed 16-bit CT
    error = np.abs(hu - read_dicom_hu(get_testdata_file("CT_small.dcm"))[0])
    assert error.max() <= max_hu_error and error.mean() <= max_hu_error / 5
    if max_hu_error == 0:
        _same_as(path, "CT_small.dcm")


@pytest.mark.parametrize("name, relabel, max_error", [
    ("SC_rgb_jpeg_gdcm.dcm", None, 0),  # JPEG lossless, first-order prediction (SV1)
    ("SC_rgb_jpeg_gdcm.dcm", JPEGLossless, 0),  # its SV1 stream is a valid Process 14 stream too
    ("SC_rgb_dcmtk_+eb+cr.dcm", None, 2),  # JPEG baseline, RGB (no subsampling): GDCM and Pillow alike
    ("SC_rgb_jls_lossy_sample.dcm", None, 2),  # JPEG-LS near-lossless (NEAR 2)
    ("SC_rgb_gdcm_KY.dcm", None, 0),  # JPEG 2000 (8-bit RGB)
])
def test_other_codecs_match_the_lossless_copy_of_the_same_image(tmp_path, name, relabel, max_error):
    # the codecs no bundled CT/MR file uses: the same 100 x 100 test pattern ships RLE-compressed as SC_rgb_rle.dcm
    path = get_testdata_file(name)
    if relabel is not None:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = relabel
        ds.save_as(path := tmp_path / name)
    rgb, reference = (np.rint(load_image(p) * 255) for p in (path, get_testdata_file("SC_rgb_rle.dcm")))
    assert rgb.shape == reference.shape == (100, 100, 3)
    assert np.abs(rgb - reference).max() <= max_error


def test_twelve_bit_jpeg_extended_with_the_gpl_extra_gives_pydicoms_reference_values():
    pytest.importorskip("libjpeg")  # pylibjpeg-libjpeg, the dicom-gpl extra: the only 12-bit JPEG decoder
    hu, ds = read_dicom_hu(get_testdata_file("JPGExtended.dcm"))  # NM, 12 bits
    assert ds.file_meta.TransferSyntaxUID == JPEGExtended12Bit and ds.BitsStored == 12
    assert hu[420, 140] == 244 and hu[230, 120] == 95


def test_deflate_gives_pydicoms_reference_values():
    hu, ds = read_dicom_hu(get_testdata_file("image_dfl.dcm"))
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert hu[10].min() == 41 and hu[10].max() == 255
    assert hu[300, 255:263].tolist() == [138, 65, 65, 65, 65, 35, 35, 35]


@pytest.mark.parametrize("name, syntax, keep, expected", [
    # as without pylibjpeg-libjpeg (whether or not it is installed here): GDCM and Pillow refuse 12-bit JPEG
    ("JPGExtended.dcm", JPEGExtended12Bit, True, JPEG_EXTENDED + NEEDS_GPL),
    ("JPEG-lossy.dcm", JPEGExtended12Bit, True, JPEG_EXTENDED + NEEDS_GPL),
    # as if python-gdcm were not installed: pydicom has no JPEG-LS decoder left
    ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless, False, "cannot decode pixel data in transfer syntax JPEG-LS Lossless "
     "Image Compression (1.2.840.10008.1.2.4.80): no decoder installed (gdcm - requires gdcm>=3.0.10)"),
])
def test_missing_decoder_says_what_to_install(monkeypatch, name, syntax, keep, expected):
    monkeypatch.setitem(sys.modules, "libjpeg", None)  # find_spec("libjpeg") is None, import fails
    decoder = pydicom.pixels.get_decoder(syntax)
    monkeypatch.setattr(decoder, "_available", {k: v for k, v in decoder._available.items() if keep and k != "pylibjpeg"})
    if not keep:
        monkeypatch.setattr(decoder, "_unavailable", {"gdcm": ("gdcm>=3.0.10",)})
    _one_line_error(get_testdata_file(name), ": " + expected)


def test_corrupt_bundled_jpeg_names_file_and_transfer_syntax():
    # JPEG-lossy.dcm: a 12-bit JPEG whose scan header is invalid (pydicom ships JPGExtended.dcm as its fix)
    pytest.importorskip("libjpeg")  # without it, the line names the dicom-gpl extra (the test above)
    message = _one_line_error(get_testdata_file("JPEG-lossy.dcm"), ": " + JPEG_EXTENDED, "pylibjpeg: ")
    assert "Unable to decode" not in message and "dicom-gpl" not in message  # each plugin's own reason


def test_corrupt_j2k_written_to_disk_names_file_and_transfer_syntax(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = pydicom.encaps.encapsulate([frame[:4] + bytes(len(frame) - 4)])  # J2K SOC and SIZ markers, zeros
    ds.save_as(path := tmp_path / "broken j2k.dcm")
    _one_line_error(path, "cannot decode pixel data in transfer syntax JPEG 2000 Image Compression (Lossless Only) "
                    "(1.2.840.10008.1.2.4.90): ", "gdcm: no image decoded; ",  # not pydicom's "'NoneType' object has no ..."
                    "pylibjpeg: Error decoding the J2K data: failed to read the header")


def test_quiet_keeps_pydicoms_plugin_tracebacks_off_stderr():
    # pydicom logs each failing plugin's traceback at ERROR: shown once an application configures logging
    code = ("import logging, sys; logging.basicConfig()\nfrom lora_iqa.logs import quiet; quiet()\n"
            "from lora_iqa.data.io import load_image\ntry: load_image(sys.argv[1])\nexcept Exception as e: print(e)\n")
    path = get_testdata_file("JPEG-lossy.dcm")  # every plugin fails in Python: no codec library writes to stderr
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith(f"{path}: cannot decode pixel data") and done.stderr == ""
