"""Dataset importers: tiny fixtures in each format's published layout -> a valid manifest; corrupt ones -> one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import one_error_line
from PIL import Image

from lora_iqa.cli.main import main
from lora_iqa.data.datasets import FORMATS, import_dataset
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.tables import ScaleInfo, assign_splits
from lora_iqa.errors import LoraIqaError

# --- writers for the fixture files ----------------------------------------------------------------


def _image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L" if path.suffix == ".tif" else "RGB", (8, 8), value).save(path)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1))


def _xlsx(path: Path, table: list[list[object]]) -> None:
    """A one-sheet workbook written by openpyxl (strings in the shared-strings table, as Excel writes them)."""
    import openpyxl

    book = openpyxl.Workbook()
    for row in table:
        book.active.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


# --- one tiny fixture per format: (root) -> (image with the best score, image with the worst) --------

KONIQ_HEADER = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]
KONIQ = [("10004473376.jpg", 3.84), ("10007357496.jpg", 4.61), ("10040206.jpg", 1.22), ("1011.jpg", 2.9)]


def koniq10k(root: Path) -> tuple[str, str]:
    _csv(root / "koniq10k_scores_and_distributions.csv", KONIQ_HEADER,
         [[n, 0, 1, 20, 60, 19, 100, mos, 0.6, mos * 20] for n, mos in KONIQ])
    for n, _ in KONIQ:
        _image(root / "1024x768" / n)
    return "1024x768/10007357496.jpg", "1024x768/10040206.jpg"


SPAQ_HEADER = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
SPAQ = [["00001.jpg", 42.5, 50, 41, 40.2, 38, 45], ["00002.jpg", 85.0, 80, 84, 79, 82.5, 90],
        ["00003.jpg", 12.3, 20, 9.5, 14, 11, 8], ["00004.jpg", 63, 60, 61, 65, 59, 66]]


def spaq(root: Path, header: list[str] = SPAQ_HEADER, rows: list[list[object]] = SPAQ) -> tuple[str, str]:
    _xlsx(root / "Annotations" / "MOS and Image attribute scores.xlsx", [header, *rows])
    for row in SPAQ:
        _image(root / "TestImage" / row[0])
    return "TestImage/00002.jpg", "TestImage/00003.jpg"


LIVEC = [("t1.bmp", 55.0), ("t2.bmp", 48.2), ("10.bmp", 91.3), ("100.bmp", 7.4), ("1000.bmp", 60.1)]


def _livec_names(names: list[str]) -> np.ndarray:
    cells = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        cells[i, 0] = np.array([n])
    return cells


def livec(root: Path) -> tuple[str, str]:
    (root / "Data").mkdir(parents=True)
    scipy.io.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": _livec_names([n for n, _ in LIVEC])})
    scipy.io.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[m for _, m in LIVEC]])})
    for n, _ in LIVEC:
        _image(root / "Images" / ("trainingImages" if n.startswith("t") else "") / n)
    return "Images/10.bmp", "Images/100.bmp"


KADID = [(f"I{r:02d}_{d:02d}_{lv:02d}.png", f"I{r:02d}.png", round(4.6 - 0.8 * (lv - 1) - 0.1 * r, 2))
         for r in (1, 2, 3, 4) for d in (1, 7) for lv in (1, 3, 5)]


def kadid10k(root: Path) -> tuple[str, str]:
    _csv(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], [[d, r, m, 0.4] for d, r, m in KADID])
    for d, r, _ in KADID:
        _image(root / "images" / d, 90)
        _image(root / "images" / r, 200)
    return "images/I01_01_01.png", "images/I04_01_05.png"


AGIQA_HEADER = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]
AGIQA = [["AttnGAN_normal_000.jpg", "statue of a man, ancient", "", "", "", 0.71, 0.4, 1.5, 0.5],
         ["AttnGAN_normal_001.jpg", "a cat on a mat", "", "", "", 1.02, 0.4, 2.0, 0.5],
         ["midjourney_normal_000.jpg", "statue of a man, ancient", "", "", "", 4.31, 0.3, 4.1, 0.3],
         ["midjourney_normal_001.jpg", "a cat on a mat", "", "", "", 3.9, 0.3, 3.2, 0.4],
         ["sd1.5_lowstep_002.jpg", 'a "red" car', "beautiful", "", "anime", 2.5, 0.5, 3.0, 0.5],
         ["sd1.5_highcorr_003.jpg", "mountains at dawn", "", "", "", 3.1, 0.5, 3.5, 0.5]]


def agiqa3k(root: Path) -> tuple[str, str]:
    _csv(root / "data.csv", AGIQA_HEADER, AGIQA)
    for row in AGIQA:
        _image(root / "AGIQA-3K" / row[0])
    return "AGIQA-3K/midjourney_normal_000.jpg", "AGIQA-3K/AttnGAN_normal_000.jpg"


AIGC_PROMPTS = ["A photo of a cat", "A city at night, oil painting", "A bowl of fruit"]
AIGC_N = 2 * 4 * len(AIGC_PROMPTS)  # 2 models x 3 prompts x 4 images


def _mosz(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).uniform(30, 70, size=(AIGC_N, 1))
    v[5, 0], v[17, 0] = 88.0, 11.0  # the best and the worst quality
    return v


def aigciqa2023(root: Path) -> tuple[str, str]:
    (root / "DATA" / "MOS").mkdir(parents=True)
    for k in (1, 2, 3):
        scipy.io.savemat(root / "DATA" / "MOS" / f"mosz{k}.mat", {"MOSz": _mosz(k)})
    _xlsx(root / "AIGCIQA2023_Prompts.xlsx", [["id", "class", "prompt"], *([i, "animal", p] for i, p in enumerate(AIGC_PROMPTS))])
    for i in range(AIGC_N):
        _image(root / "Image" / "allimg" / f"{i}.png")
    return "Image/allimg/5.png", "Image/allimg/17.png"


LDCT = {"0000.tif": 3.2, "0001.tif": 0.4, "0002.tif": 4.0, "0003.tif": 2.0, "0004.tif": 1.6}


def ldctiqac2023(root: Path) -> tuple[str, str]:
    root.mkdir(parents=True)
    (root / "train.json").write_text(json.dumps(LDCT, indent=1))
    for n in LDCT:
        _image(root / "image" / n)
    return "image/0002.tif", "image/0001.tif"


BUILD = {f.__name__: f for f in (koniq10k, spaq, livec, kadid10k, agiqa3k, aigciqa2023, ldctiqac2023)}
EXPECTED = {  # format: (dimensions, number of images, number of contents)
    "koniq10k": (("overall",), 4, 4),
    "spaq": (("sharpness", "noise", "colorfulness", "brightness", "contrast", "overall"), 4, 4),
    "livec": (("overall",), 5, 5),
    "kadid10k": (("overall",), 24, 4),
    "agiqa3k": (("alignment", "overall"), 6, 4),
    "aigciqa2023": (("authenticity", "alignment", "overall"), AIGC_N, 3),
    "ldctiqac2023": (("overall",), 5, 5),
}


def test_every_format_has_a_fixture():
    assert set(BUILD) == set(FORMATS) == set(EXPECTED)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_import(fmt, tmp_path, capsys):
    root = tmp_path / fmt
    best, worst = BUILD[fmt](root)
    out = root / "manifest.csv"
    assert main(["data", "import", fmt, str(root), "--out", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "train" in printed and "test" in printed

    meta = json.loads((root / "manifest.json").read_text())
    dims, n, n_contents = EXPECTED[fmt]
    assert meta["format"] == fmt and tuple(meta["dimensions"]) == dims and meta["split"]["seed"] == 3
    assert set(meta["mapping"]) == set(dims) and all((root / s).is_file() for s in meta["sources"])
    m = read_manifest(out, meta["dimensions"])  # checks files, the 0-4 range and content/split disjointness
    assert m.dimensions == dims and len(m.items) == n and len({i.content for i in m.items}) == n_contents
    assert sum(meta["counts"].values()) == n and meta["counts"]["train"] >= 1

    by_image = {i.image.relative_to(root.resolve()).as_posix(): i for i in m.items}
    overall = [i.scores["overall"] for i in m.items]
    assert by_image[best].scores["overall"] == max(overall) > by_image[worst].scores["overall"] == min(overall)
    assert all(0 <= s <= 4 for i in m.items for s in i.scores.values())
    splits: dict[str, set[str]] = {}
    for item in m.items:
        splits.setdefault(item.content, set()).add(item.split)
    assert all(len(s) == 1 for s in splits.values())

    if fmt == "kadid10k":
        assert all(i.reference == root.resolve() / "images" / f"{i.content}.png" for i in m.items)
    if fmt in ("agiqa3k", "aigciqa2023"):
        assert all(i.extra["prompt"] == i.content for i in m.items)
    if fmt == "aigciqa2023":  # image i belongs to prompt (i % 12) // 4
        assert by_image["Image/allimg/13.png"].content == AIGC_PROMPTS[0]
        assert by_image["Image/allimg/20.png"].content == AIGC_PROMPTS[2]
    if fmt == "livec":
        assert by_image["Images/trainingImages/t1.bmp"].scores["overall"] == 2.2


def test_exact_mapping_and_direction():
    assert ScaleInfo("MOS", 1, 5).to_score(1) == 0 and ScaleInfo("MOS", 1, 5).to_score(5) == 4
    assert ScaleInfo("MOS", 0, 100).to_score(62.5) == 2.5
    assert ScaleInfo("DMOS", 0, 100, higher_is_better=False).to_score(25) == 3.0


def test_splits_reproducible_and_by_content(tmp_path):
    contents = [f"scene{i}" for i in range(50)]
    a, b, c = assign_splits(contents, 0), assign_splits(contents[::-1], 0), assign_splits(contents, 1)
    assert a == b and a != c
    assert [list(a.values()).count(s) for s in ("train", "val", "test")] == [35, 5, 10]
    assert sorted(assign_splits(["a", "b", "c"]).values()) == ["test", "train", "val"]
    assert set(assign_splits(["a", "b"]).values()) == {"train"}
    root = tmp_path / "kadid"
    kadid10k(root)
    first = import_dataset("kadid10k", root, root / "m1.csv", seed=7)
    import_dataset("kadid10k", root, root / "m2.csv", seed=7)
    assert first.dimensions == ("overall",) and (root / "m1.json").is_file()
    assert (root / "m1.csv").read_text() == (root / "m2.csv").read_text()


def test_manifest_above_root_and_outside(tmp_path, capsys):
    root = tmp_path / "data" / "koniq"
    koniq10k(root)
    res = import_dataset("koniq10k", root, tmp_path / "data")  # a folder: data/manifest.csv
    m = read_manifest(res.path, res.dimensions)
    assert res.path == tmp_path / "data" / "manifest.csv" and len(m.items) == 4
    assert "koniq/1024x768/1011.jpg" in res.path.read_text()
    assert json.loads(res.meta_path.read_text())["sources"] == ["koniq/koniq10k_scores_and_distributions.csv"]

    elsewhere = tmp_path / "elsewhere" / "manifest.csv"
    assert main(["data", "import", "koniq10k", str(root), "--out", str(elsewhere)]) == 1
    one_error_line(capsys, elsewhere, "must be in")
    assert not elsewhere.parent.exists()


def test_out_is_a_source_file(tmp_path, capsys):
    root = tmp_path / "agiqa"
    agiqa3k(root)
    text = (root / "data.csv").read_text()
    assert main(["data", "import", "agiqa3k", str(root), "--out", str(root / "data.csv")]) == 1
    one_error_line(capsys, root / "data.csv", "dataset's own files")
    assert (root / "data.csv").read_text() == text


def test_no_check_files(tmp_path):
    root = tmp_path / "ldct"
    ldctiqac2023(root)
    (root / "image" / "0003.tif").unlink()
    with pytest.raises(LoraIqaError, match="0003.tif: image file not found"):
        import_dataset("ldctiqac2023", root, root / "manifest.csv")
    assert not (root / "manifest.csv").exists() and not (root / "manifest.json").exists()
    res = import_dataset("ldctiqac2023", root, root / "manifest.csv", check_files=False)
    assert len(read_manifest(res.path, res.dimensions, check_files=False).items) == 5


def _mat(path: Path, **variables) -> None:
    scipy.io.savemat(path, variables)


# Each case: format, how to corrupt the valid fixture, what the one error line names (file first).
BAD = {
    "koniq missing file": ("koniq10k", lambda r: (r / "koniq10k_scores_and_distributions.csv").unlink(),
                           ["koniq10k_scores_and_distributions.csv", "missing KonIQ-10k score file"]),
    "koniq renamed column": ("koniq10k", lambda r: _sub(r / "koniq10k_scores_and_distributions.csv", ",MOS,", ",mos,"),
                             ["koniq10k_scores_and_distributions.csv:1", "missing column(s) 'MOS'"]),
    "koniq non-numeric": ("koniq10k", lambda r: _sub(r / "koniq10k_scores_and_distributions.csv", ",4.61,", ",n/a,"),
                          ["koniq10k_scores_and_distributions.csv:3", "column 'MOS': not a number: 'n/a'"]),
    "koniq out of range": ("koniq10k", lambda r: _sub(r / "koniq10k_scores_and_distributions.csv", ",4.61,", ",46.1,"),
                           ["koniq10k_scores_and_distributions.csv:3", "outside the published range [1, 5]"]),
    "koniq missing image": ("koniq10k", lambda r: (r / "1024x768" / "1011.jpg").unlink(),
                            ["1024x768/1011.jpg", "image file not found", "koniq10k_scores_and_distributions.csv:5"]),
    "spaq missing file": ("spaq", lambda r: (r / "Annotations" / "MOS and Image attribute scores.xlsx").unlink(),
                          ["MOS and Image attribute scores.xlsx", "missing SPAQ score sheet"]),
    "spaq renamed column": ("spaq", lambda r: spaq(r, [c.replace("Noisiness", "Noise") for c in SPAQ_HEADER]),
                            ["MOS and Image attribute scores.xlsx:1", "'Noisiness'"]),
    "spaq non-numeric": ("spaq", lambda r: spaq(r, rows=[SPAQ[0], ["00002.jpg", "good", *SPAQ[1][2:]]]),
                         ["MOS and Image attribute scores.xlsx:3", "column 'MOS': not a number: 'good'"]),
    "spaq not xlsx": ("spaq", lambda r: (r / "Annotations" / "MOS and Image attribute scores.xlsx").write_text("a,b\n"),
                      ["MOS and Image attribute scores.xlsx", "cannot read as an .xlsx workbook"]),
    "livec missing file": ("livec", lambda r: (r / "Data" / "AllMOS_release.mat").unlink(),
                           ["Data/AllMOS_release.mat", "missing LIVE Challenge MOS file"]),
    "livec renamed variable": ("livec", lambda r: _mat(r / "Data" / "AllMOS_release.mat", AllMOS=np.ones((1, 5))),
                               ["AllMOS_release.mat", "missing variable 'AllMOS_release' (found AllMOS)"]),
    "livec non-numeric": ("livec", lambda r: _mat(r / "Data" / "AllMOS_release.mat",
                                                  AllMOS_release=np.array(["1", "2", "x", "4", "5"])),
                          ["AllMOS_release.mat", "entry 3: not a number: 'x'"]),
    "livec length mismatch": ("livec", lambda r: _mat(r / "Data" / "AllMOS_release.mat", AllMOS_release=np.ones((1, 4))),
                              ["AllMOS_release.mat", "4 values", "5 images"]),
    "kadid missing file": ("kadid10k", lambda r: (r / "dmos.csv").unlink(), ["dmos.csv", "missing KADID-10k score file"]),
    "kadid renamed column": ("kadid10k", lambda r: _sub(r / "dmos.csv", "ref_img", "reference"),
                             ["dmos.csv:1", "missing column(s) 'ref_img'"]),
    "kadid non-numeric": ("kadid10k", lambda r: _sub(r / "dmos.csv", ",4.5,", ",,"),
                          ["dmos.csv:2", "column 'dmos': not a number: ''"]),
    "kadid missing reference": ("kadid10k", lambda r: (r / "images" / "I02.png").unlink(),
                                ["images/I02.png", "reference file not found"]),
    "agiqa missing file": ("agiqa3k", lambda r: (r / "data.csv").unlink(), ["data.csv", "missing AGIQA-3K score file"]),
    "agiqa renamed column": ("agiqa3k", lambda r: _sub(r / "data.csv", "mos_quality", "quality"),
                             ["data.csv:1", "missing column(s) 'mos_quality'"]),
    "agiqa non-numeric": ("agiqa3k", lambda r: _sub(r / "data.csv", ",4.1,", ",high,"),
                          ["data.csv:4", "column 'mos_align': not a number: 'high'"]),
    "aigc missing file": ("aigciqa2023", lambda r: (r / "DATA" / "MOS" / "mosz3.mat").unlink(),
                          ["DATA/MOS/mosz3.mat", "missing AIGCIQA2023 MOS file (alignment)"]),
    "aigc missing prompts": ("aigciqa2023", lambda r: (r / "AIGCIQA2023_Prompts.xlsx").unlink(),
                             ["AIGCIQA2023_Prompts.xlsx", "missing AIGCIQA2023 prompt list"]),
    "aigc renamed variable": ("aigciqa2023", lambda r: _mat(r / "DATA" / "MOS" / "mosz1.mat", MOS=_mosz(1)),
                              ["mosz1.mat", "missing variable 'MOSz'"]),
    "aigc non-numeric": ("aigciqa2023", lambda r: _mat(r / "DATA" / "MOS" / "mosz2.mat",
                                                       MOSz=np.array([["50"]] * 9 + [["?"]] + [["50"]] * 14)),
                         ["mosz2.mat", "variable 'MOSz' entry 10: not a number: '?'"]),
    "aigc wrong count": ("aigciqa2023", lambda r: [_mat(r / "DATA" / "MOS" / f"mosz{k}.mat", MOSz=np.ones((20, 1)) * 50)
                                                   for k in (1, 2, 3)],
                         ["mosz1.mat", "20 scores is not a multiple of 12"]),
    "ldct missing file": ("ldctiqac2023", lambda r: (r / "train.json").unlink(),
                          ["train.json", "missing LDCTIQAC-2023 score file"]),
    "ldct non-numeric": ("ldctiqac2023", lambda r: (r / "train.json").write_text('{"0000.tif": 2, "0001.tif": "good"}'),
                         ["train.json", "key '0001.tif': not a number: 'good'"]),
    "ldct not an object": ("ldctiqac2023", lambda r: (r / "train.json").write_text("[1, 2]"),
                           ["train.json", "expected a JSON object"]),
    "ldct out of range": ("ldctiqac2023", lambda r: (r / "train.json").write_text('{"0000.tif": 4.5}'),
                          ["train.json", "key '0000.tif': 4.5 is outside the published range [0, 4]"]),
}


@pytest.mark.parametrize("fmt, corrupt, names", BAD.values(), ids=BAD.keys())
def test_corrupt_dataset(fmt, corrupt, names, tmp_path, capsys):
    root = tmp_path / fmt
    BUILD[fmt](root)
    corrupt(root)
    before = sorted(os.listdir(root))
    assert main(["data", "import", fmt, str(root), "--out", str(root / "manifest.csv")]) == 1
    line = one_error_line(capsys, *names)
    assert str(root) in line  # the file is named by its path
    assert sorted(os.listdir(root)) == before  # nothing (half-)written


def test_missing_root(tmp_path, capsys):
    assert main(["data", "import", "spaq", str(tmp_path / "nope"), "--out", str(tmp_path / "m.csv")]) == 1
    one_error_line(capsys, tmp_path / "nope", "dataset folder not found")


@pytest.mark.parametrize("argv", [["data"], ["data", "import"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: lora-iqa " + " ".join(argv) in out
    if argv[-1] == "import":
        assert all(name in out for name in FORMATS) and "--no-check-files" in out and "--seed" in out
