import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_iqa.data.manifest import Manifest, read_manifest, write_manifest
from lora_iqa.errors import LoraIqaError

H = "image,split,content,noise,overall\n"
HR = "image,split,content,reference,noise,overall\n"
DIMS = ("noise", "overall")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A manifest folder with a few (empty) image files, and a file and a symlink pointing outside it."""
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png", "ref.png", "sub/e.png"):
        (folder / name).write_bytes(b"")
    (tmp_path / "outside.png").write_bytes(b"")
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    return folder


def _write(root: Path, text: str | bytes) -> Path:
    path = root / "manifest.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# Each case: manifest text, dimensions passed (None = inferred), expected part of the message.
BAD = {
    "missing column": ("image,split,noise\na.png,train,3\n", None, ":1: column 'content': missing required column (expected image, split, content"),
    "missing dimension": (H + "a.png,train,s1,2,3\n", ("sharpness",), ":1: column 'sharpness': missing quality-dimension column"),
    "reserved dimension": (H + "a.png,train,s1,2,3\n", ("split",), ":1: column 'split': reserved"),
    "duplicate column": ("image,split,content,noise,noise\na.png,train,s1,2,3\n", None, ":1: column 'noise': duplicate column"),
    "no dimension": ("image,split,content\na.png,train,s1\n", None, ":1: no quality-dimension column"),
    "no numeric column": (H + "a.png,train,s1,2,3\nb.png,train,s1,x,?\n", None, ":3: column 'noise': not a number: 'x'"),
    "empty score": (H + "a.png,train,s1,2,3\nb.png,train,s1,,3\n", None, ":3: column 'noise': empty score"),
    "empty score, given dims": (H + "a.png,train,s1,,3\n", DIMS, ":2: column 'noise': empty score"),
    "non-numeric": (H + "a.png,train,s1,high,3\n", DIMS, ":2: column 'noise': not a number: 'high'"),
    "nan": (H + "a.png,train,s1,2,nan\n", None, ":2: column 'overall': score must be finite"),
    "inf": (H + "a.png,train,s1,-inf,3\n", None, ":2: column 'noise': score must be finite"),
    "above range": (H + "a.png,train,s1,4.5,3\n", None, ":2: column 'noise': score 4.5 is outside [0, 4]"),
    "below range": (H + "a.png,train,s1,2,-0.1\n", None, ":2: column 'overall': score -0.1 is outside [0, 4]"),
    "unknown split": (H + "a.png,training,s1,2,3\n", None, ":2: column 'split': unknown split 'training'"),
    "empty image": (H + ",train,s1,2,3\n", None, ":2: column 'image': empty"),
    "empty content": (H + "a.png,train,,2,3\n", None, ":2: column 'content': empty"),
    "duplicate image": (H + "a.png,train,s1,2,3\nb.png,train,s1,2,3\n./a.png,train,s1,1,1\n", None, ":4: column 'image': duplicate image './a.png' (also at line 2)"),
    "missing image": (H + "a.png,train,s1,2,3\nzzz.png,train,s1,2,3\n", None, ":3: column 'image': file not found: 'zzz.png'"),
    "missing reference": (HR + "a.png,train,s1,ref.png,2,3\nb.png,train,s1,nope.png,2,3\n", None, ":3: column 'reference': file not found: 'nope.png'"),
    "absolute path": (H + "/tmp/a.png,train,s1,2,3\n", None, ":2: column 'image': absolute path '/tmp/a.png'"),
    "dotdot escape": (H + "sub/../../outside.png,train,s1,2,3\n", None, ":2: column 'image': path 'sub/../../outside.png' leaves the manifest's folder"),
    "symlink escape": (H + "link.png,train,s1,2,3\n", None, ":2: column 'image': path 'link.png' leaves the manifest's folder"),
    "reference escape": (HR + "a.png,train,s1,../outside.png,2,3\n", None, ":2: column 'reference': path '../outside.png' leaves"),
    "content in two splits": (H + "a.png,train,s1,2,3\nb.png,val,s2,2,3\nc.png,test,s1,2,3\n", None, ":4: column 'content': content 's1' is in split 'test' here and in split 'train' at line 2"),
    "wrong field count": (H + "a.png,train,s1,2\n", None, ":2: expected 5 fields, found 4"),
    "first error wins": (H + "a.png,bad,s1,2,3\nb.png,train,s1,9,3\n", None, ":2: column 'split'"),
    "line numbers count blank and multi-line rows": (
        "image,split,content,noise,note\na.png,train,s1,2,\"two\nlines\"\n\nb.png,train,s1,7,x\n", None, ":5: column 'noise': score 7"),
    "no rows": (H, None, ": no rows"),
    "empty file": ("", None, ": empty file"),
    "blank first line": ("\n" + H + "a.png,train,s1,2,3\n", None, ": no header on line 1"),
    "not utf-8": (H.encode() + b"a\xff.png,train,s1,2,3\n", None, ": not UTF-8"),
}


@pytest.mark.parametrize("text, dims, expected", BAD.values(), ids=BAD.keys())
def test_bad_manifest(root, text, dims, expected):
    path = _write(root, text)
    with pytest.raises(LoraIqaError) as info:
        read_manifest(path, dimensions=dims)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}{expected}"), message


def test_missing_manifest(tmp_path):
    with pytest.raises(LoraIqaError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_good_manifest(root):
    path = _write(
        root,
        "image,split,content,reference,noise,overall,prompt\n"
        'a.png,train,s1,ref.png,2,3.5,"soft, tissue"\n'
        "sub/e.png,val,s2,,0,4,\n"
        "c.png, test ,s3,,4,0,x\n",
    )
    m = read_manifest(path)
    assert isinstance(m, Manifest) and m.path == path
    assert m.dimensions == ("noise", "overall")
    a, e, c = m.items
    assert a.image == root.resolve() / "a.png" and a.image.is_absolute()
    assert a.reference == root.resolve() / "ref.png" and e.reference is None
    assert e.image == root.resolve() / "sub" / "e.png"
    assert a.scores == {"noise": 2.0, "overall": 3.5}
    assert a.extra == {"prompt": "soft, tissue"} and e.extra == {"prompt": ""}
    assert (a.line, e.line, c.line) == (2, 3, 4)
    assert [i.content for i in m.split("test")] == ["s3"]
    with pytest.raises(ValueError):
        m.split("dev")


def test_numeric_metadata_stays_extra_when_dimensions_are_given(root):
    path = _write(root, "image,split,content,overall,views\na.png,train,s1,3,64\n")
    with pytest.raises(LoraIqaError, match="column 'views'"):
        read_manifest(path)  # inferred: views looks like a dimension
    item = read_manifest(path, dimensions=["overall"]).items[0]
    assert item.scores == {"overall": 3.0} and item.extra == {"views": "64"}


def test_check_files_off(root):
    path = _write(root, H + "later.png,train,s1,2,3\n")
    assert read_manifest(path, check_files=False).items[0].image == root.resolve() / "later.png"


def test_write_read_round_trip(root):
    rows = [
        {"image": Path("a.png"), "split": "train", "content": "s1", "noise": 1.25, "overall": 3, "dose": 0.25},
        {"image": "sub/e.png", "split": "test", "content": "s2", "reference": "ref.png", "noise": 0, "overall": 4},
    ]
    path = write_manifest(root / "manifest.csv", rows, DIMS)
    assert path.read_text().splitlines()[0] == "image,split,content,reference,noise,overall,dose"
    m = read_manifest(path, dimensions=DIMS)
    assert [i.scores for i in m.items] == [{"noise": 1.25, "overall": 3.0}, {"noise": 0.0, "overall": 4.0}]
    assert [i.extra for i in m.items] == [{"dose": "0.25"}, {"dose": ""}]
    assert m.items[1].reference == root.resolve() / "ref.png" and m.items[0].reference is None
    assert "sub/e.png" in path.read_text()  # relative paths stay as given


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=4), min_size=1, max_size=5))
def test_scores_round_trip_exactly(tmp_path_factory, scores):
    folder = tmp_path_factory.mktemp("rt")
    rows = [{"image": f"{i}.png", "split": "train", "content": "c", "overall": s} for i, s in enumerate(scores)]
    m = read_manifest(write_manifest(folder / "manifest.csv", rows, ["overall"]), check_files=False)
    assert [i.scores["overall"] for i in m.items] == scores


def test_failed_write_leaves_nothing_behind(root):
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    target = root / "new.csv"
    rows = [{"image": "a.png", "split": "train", "content": "s1", "overall": Unprintable()}]
    before = sorted(os.listdir(root))
    with pytest.raises(RuntimeError):
        write_manifest(target, rows, ["overall"])
    assert not target.exists() and sorted(os.listdir(root)) == before

    existing = _write(root, H + "a.png,train,s1,2,3\n")
    text = existing.read_text()
    with pytest.raises(ValueError):  # a row without an image
        write_manifest(existing, [{"split": "train", "content": "s1", "noise": 1, "overall": 1}], DIMS)
    assert existing.read_text() == text


def test_write_interrupted_midway_leaves_old_file(root, monkeypatch):
    existing = _write(root, H + "a.png,train,s1,2,3\n")
    before = sorted(os.listdir(root))
    real_write_text = Path.write_text

    def half_then_fail(self, data, *args, **kwargs):
        real_write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError):
        write_manifest(existing, [{"image": "b.png", "split": "val", "content": "s2", "noise": 1, "overall": 2}], DIMS)
    monkeypatch.undo()
    assert existing.read_text() == H + "a.png,train,s1,2,3\n" and sorted(os.listdir(root)) == before
