"""``lora-iqa push`` and ``--adapter OWNER/NAME`` against a local fake of the Hub's HTTP API.

The fake (a thread on 127.0.0.1) serves the few endpoints huggingface_hub uses for ``create_repo``,
``upload_folder`` (validate-yaml, preupload -> every file "regular", NDJSON commit with base64
contents) and ``snapshot_download`` (revision info, tree listing, HEAD/GET ``resolve/``). Nothing
leaves the machine: the endpoint comes from ``HF_ENDPOINT`` and ``huggingface_hub.constants.ENDPOINT``
points at the fake too, so a stray request would land there (and be logged) rather than on the Hub.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from conftest import one_error_line

from lora_iqa.cli.main import main
from lora_iqa.errors import LoraIqaError

TOKEN = "hf_FAKE-test-token-NEVER-UPLOAD-7d3a9c"
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "lora_iqa.json", "README.md"}
REPO = r"(?P<repo>[^/]+/[^/]+)"


class FakeHub:
    """The Hub endpoints huggingface_hub's create_repo / upload_folder / snapshot_download call, in memory."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.repos: dict[str, dict] = {}  # repo_id -> {"private": bool, "files": {path: bytes}, "sha": str}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.unknown: list[tuple[str, str]] = []  # requests no route matched
        self.auth: list[str | None] = []  # Authorization header of every request
        self.bodies: list[bytes] = []  # every request body (to grep for the token)
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                hub._handle(self, "GET")

            def do_HEAD(self):
                hub._handle(self, "HEAD")

            def do_POST(self):
                hub._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------- routing

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = urlsplit(h.path).path
        with self.lock:
            self.requests.append((method, path))
            self.auth.append(h.headers.get("Authorization"))
            self.bodies.append(body)
        routes = [
            ("POST", r"/api/repos/create", self._create),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("GET", r"/api/agent-harnesses", self._harnesses),
            ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", self._preupload),
            ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", self._commit),
            ("GET", rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?", self._info),
            ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)", self._tree),
            ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("HEAD", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        ]
        for m, pattern, fn in routes:
            match = re.fullmatch(pattern, path)
            if m == method and match:
                return fn(h, method, body, **{k: unquote(v) for k, v in match.groupdict().items() if v})
        with self.lock:
            self.unknown.append((method, path))
        self._send(h, 404, {"error": "not found"}, method)

    def _send(self, h, status: int, payload, method: str = "GET", headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)

    def _authorized(self, h) -> bool:
        if h.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        self._send(h, 401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _repo(self, h, repo: str, method: str = "GET"):
        r = self.repos.get(repo)
        if r is None or (r["private"] and h.headers.get("Authorization") != f"Bearer {self.token}"):
            self._send(h, 404, {"error": "Repository not found"}, method, {"X-Error-Code": "RepoNotFound"})
            return None
        return r

    # ---------------------------------------------------------------- write side

    def _create(self, h, method, body):
        if not self._authorized(h):
            return
        req = json.loads(body)
        repo = f"{req['organization']}/{req['name']}"
        if repo in self.repos:
            return self._send(h, 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo}"})
        self.repos[repo] = {"private": req.get("visibility") == "private", "files": {}, "sha": "0" * 40,
                            "create": req}
        self._send(h, 200, {"url": f"{self.url}/{repo}"})

    def _harnesses(self, h, method, body):  # huggingface_hub's user-agent detection asks for this once
        self._send(h, 200, {"standardEnvVars": [], "harnesses": {}})

    def _validate_yaml(self, h, method, body):
        try:
            meta = yaml.safe_load(json.loads(body)["content"].split("---")[1])
            ok = isinstance(meta, dict)
        except (yaml.YAMLError, IndexError):
            ok = False
        if ok:
            return self._send(h, 200, {"errors": [], "warnings": []})
        self._send(h, 400, {"errors": [{"message": "invalid YAML metadata"}], "warnings": []})

    def _preupload(self, h, method, body, repo, rev):
        if not self._authorized(h) or self._repo(h, repo) is None:
            return
        files = json.loads(body)["files"]
        self._send(h, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                      for f in files]})

    def _commit(self, h, method, body, repo, rev):
        if not self._authorized(h):
            return
        r = self._repo(h, repo)
        if r is None:
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        assert lines[0]["key"] == "header"
        for item in lines[1:]:
            if item["key"] != "file" or item["value"].get("encoding") != "base64":  # no LFS in this fake
                return self._send(h, 400, {"error": f"unsupported commit operation {item['key']}"})
            r["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        r["sha"] = hashlib.sha1(body + r["sha"].encode()).hexdigest()
        r["commit"] = lines[0]["value"]
        self._send(h, 200, {"commitUrl": f"{self.url}/{repo}/commit/{r['sha']}", "commitOid": r["sha"],
                            "success": True, "pullRequestUrl": None})

    # ---------------------------------------------------------------- read side

    def _info(self, h, method, body, repo, rev="main"):
        r = self._repo(h, repo)
        if r is not None:
            self._send(h, 200, {"id": repo, "modelId": repo, "sha": r["sha"], "private": r["private"],
                                "siblings": [{"rfilename": p} for p in sorted(r["files"])]})

    def _tree(self, h, method, body, repo, rev):
        r = self._repo(h, repo)
        if r is not None:
            self._send(h, 200, [{"type": "file", "oid": _blob_oid(d), "size": len(d), "path": p}
                                for p, d in sorted(r["files"].items())])

    def _resolve(self, h, method, body, repo, rev, file):
        r = self._repo(h, repo, method)
        if r is None:
            return
        if file not in r["files"]:
            return self._send(h, 404, {"error": "Entry not found"}, method,
                              {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": r["sha"]})
        data = r["files"][file]
        self._send(h, 200, data, method, {"X-Repo-Commit": r["sha"], "ETag": f'"{_blob_oid(data)}"'})


def _blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running FakeHub; huggingface_hub online, pointed at it, token in HF_TOKEN, a private cache."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    with FakeHub() as fake:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest sets HF_HUB_OFFLINE=1 for the suite
        monkeypatch.setattr(constants, "ENDPOINT", fake.url)  # as if HF_ENDPOINT had been set before import
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))  # no stored login
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf_home" / "agent_harnesses.json"))
        bars_were_off = are_progress_bars_disabled()
        disable_progress_bars()
        yield fake
        if not bars_were_off:
            enable_progress_bars()


@pytest.fixture
def local(adapter_dir, tmp_path) -> Path:
    """A copy of the tiny trained adapter plus what must stay local: checkpoints, hidden and temp files."""
    d = tmp_path / "adapter"
    shutil.copytree(adapter_dir, d)
    (d / "checkpoints" / "step_0000006").mkdir(parents=True)
    (d / "checkpoints" / "step_0000006" / "optimizer.bin").write_bytes(b"\0" * 64)
    (d / ".save-abc123").mkdir()
    (d / ".save-abc123" / "adapter_model.safetensors").write_bytes(b"partial")
    (d / ".lora_iqa.json.x1y2.tmp").write_text("{")
    (d / "notes.txt.tmp").write_text("scratch")
    return d


def _image(manifest: Path) -> Path:
    return sorted((manifest.parent / "images").glob("*_1.png"))[0]


def test_push_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["push", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--repo-id" in out and "--private" in out and "HF_TOKEN" in out
    assert "--token" not in out


def test_push_uploads_the_adapter_byte_for_byte(hub, local, capsys):
    assert main(["push", str(local), "--repo-id", "alice/ct-lora"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{hub.url}/alice/ct-lora"
    repo = hub.repos["alice/ct-lora"]
    assert repo["create"].get("visibility") == "public"
    # exactly the adapter, complete and byte-identical; nothing of checkpoints/, hidden or temp files
    assert set(repo["files"]) == ADAPTER_FILES
    for name, data in repo["files"].items():
        assert data == (local / name).read_bytes(), name
    assert not any(b"optimizer.bin" in b or b"partial" in b or b".tmp" in b for b in hub.bodies)
    # the card's metadata
    card = repo["files"]["README.md"].decode()
    meta = json.loads(repo["files"]["lora_iqa.json"])
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == meta["base"]["name_or_path"]
    assert front["library_name"] == "peft"
    assert {"lora_iqa", "image-quality-assessment", "lora"} <= set(front["tags"])
    for text in ("## Validation metrics", "| overall |", "## Training config", "PeftModel.from_pretrained",
                 meta["template_version"], meta["base"]["fingerprint"], f"lr: {meta['config']['train']['lr']}"):
        assert text in card, text
    # the token went in the Authorization header only: never in a file or any request body
    sent = {a for (_, path), a in zip(hub.requests, hub.auth) if path != "/api/agent-harnesses"}
    assert sent == {f"Bearer {TOKEN}"}, list(zip(hub.requests, hub.auth))
    for name, data in repo["files"].items():
        assert TOKEN.encode() not in data, name
    assert not any(TOKEN.encode() in b for b in hub.bodies)
    assert not hub.unknown, hub.unknown


def test_push_private_and_again(hub, local, capsys):
    from lora_iqa.hub import push

    assert push(local, "alice/ct-lora", private=True) == f"{hub.url}/alice/ct-lora"
    assert hub.repos["alice/ct-lora"]["private"]
    # pushing again to the existing repo (create_repo answers 409, exist_ok) updates it
    (local / "README.md").write_text((local / "README.md").read_text() + "\nretrained\n")
    assert main(["push", str(local), "--repo-id", "alice/ct-lora", "--private"]) == 0
    assert hub.repos["alice/ct-lora"]["files"]["README.md"].endswith(b"retrained\n")
    assert not hub.unknown, hub.unknown


def _set_card(d: Path, old: str, new: str) -> None:
    text = (d / "README.md").read_text()
    assert old in text
    (d / "README.md").write_text(text.replace(old, new, 1))


# (case id, how to break the directory, the file the error must name)
BROKEN = [
    ("no-meta", lambda d: (d / "lora_iqa.json").unlink(), "lora_iqa.json"),
    ("bad-meta", lambda d: (d / "lora_iqa.json").write_text("{not json"), "lora_iqa.json"),
    ("meta-missing-key", lambda d: (d / "lora_iqa.json").write_text(json.dumps(
        {k: v for k, v in json.loads((d / "lora_iqa.json").read_text()).items() if k != "metrics"})), "lora_iqa.json"),
    ("no-weights", lambda d: (d / "adapter_model.safetensors").unlink(), "adapter_model.safetensors"),
    ("truncated-weights", lambda d: (d / "adapter_model.safetensors").write_bytes(
        (d / "adapter_model.safetensors").read_bytes()[:100]), "adapter_model.safetensors"),
    ("no-adapter-config", lambda d: (d / "adapter_config.json").unlink(), "adapter_config.json"),
    ("bad-adapter-config", lambda d: (d / "adapter_config.json").write_text(""), "adapter_config.json"),
    ("no-card", lambda d: (d / "README.md").unlink(), "README.md"),
    ("card-without-metadata", lambda d: (d / "README.md").write_text("# just a title\n"), "README.md"),
    ("card-wrong-library", lambda d: _set_card(d, "library_name: peft", "library_name: transformers"), "README.md"),
    ("card-wrong-base", lambda d: _set_card(d, "base_model: ", "base_model: other/base #"), "README.md"),
    ("card-no-tags", lambda d: _set_card(d, "tags: [lora_iqa,", "tags: ["), "README.md"),
]


@pytest.mark.parametrize("case,breakit,culprit", BROKEN, ids=[b[0] for b in BROKEN])
def test_push_refuses_a_broken_directory(hub, local, capsys, case, breakit, culprit):
    breakit(local)
    assert main(["push", str(local), "--repo-id", "alice/ct-lora"]) == 1
    one_error_line(capsys, local / culprit)
    assert hub.requests == [] and hub.repos == {}  # refused before any request: nothing uploaded


def test_push_refuses_missing_dir_and_bad_repo_id(hub, local, tmp_path, capsys):
    assert main(["push", str(tmp_path / "nope"), "--repo-id", "alice/ct-lora"]) == 1
    one_error_line(capsys, tmp_path / "nope")
    assert main(["push", str(local), "--repo-id", "alice/ct lora!"]) == 1
    one_error_line(capsys, "alice/ct lora!")
    assert hub.requests == []


def test_push_without_a_token_says_so_in_one_line(hub, local, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert main(["push", str(local), "--repo-id", "alice/ct-lora"]) == 1
    line = one_error_line(capsys, "token", "HF_TOKEN")
    assert "login" in line
    assert hub.requests == []


def test_push_with_a_rejected_token_is_one_line(hub, local, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong-token")
    assert main(["push", str(local), "--repo-id", "alice/ct-lora"]) == 1
    line = one_error_line(capsys, "alice/ct-lora", "401")
    assert "hf_wrong-token" not in line
    assert hub.repos == {}


def test_push_refuses_a_file_holding_the_token(hub, local, capsys):
    (local / "notes.md").write_text(f"my token is {TOKEN}\n")
    assert main(["push", str(local), "--repo-id", "alice/ct-lora"]) == 1
    line = one_error_line(capsys, local / "notes.md")
    assert TOKEN not in line
    assert hub.requests == []


def test_score_with_a_hub_adapter_id(hub, local, adapter_dir, manifest, capsys):
    from lora_iqa.artifact import resolve_adapter
    from lora_iqa.hub import push

    push(local, "alice/ct-lora")
    hub.requests.clear()
    image = str(_image(manifest))
    assert main(["score", image, "--adapter", "alice/ct-lora", "--json"]) == 0
    remote = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    downloaded = {re.sub(r"^/alice/ct-lora/resolve/[^/]+/", "", p) for m, p in hub.requests
                  if m == "GET" and "/resolve/" in p}
    assert downloaded == ADAPTER_FILES  # it really came from the (fake) Hub
    assert main(["score", image, "--adapter", str(adapter_dir), "--json"]) == 0
    here = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(remote) == 1 and remote[0]["scores"] and remote[0]["scores"] == here[0]["scores"]
    assert remote[0]["images"] == [image] and remote[0]["protocol"] == "ss"
    # the snapshot is byte-identical to the local adapter
    snap = resolve_adapter("alice/ct-lora")
    assert {p.name for p in snap.iterdir()} == ADAPTER_FILES
    for name in ADAPTER_FILES:
        assert (snap / name).read_bytes() == (local / name).read_bytes(), name
    assert not hub.unknown, hub.unknown


def test_unknown_hub_adapter_is_one_line(hub, manifest, capsys):
    assert main(["score", str(_image(manifest)), "--adapter", "alice/no-such-adapter", "--json"]) == 1
    one_error_line(capsys, "alice/no-such-adapter", "not found")


def test_offline_hub_adapter_is_one_line(hub, manifest, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["score", str(_image(manifest)), "--adapter", "alice/ct-lora", "--json"]) == 1
    one_error_line(capsys, "alice/ct-lora", "HF_HUB_OFFLINE")
    assert hub.requests == []


def test_offline_uses_the_cached_snapshot(hub, local, monkeypatch):
    from huggingface_hub import constants

    from lora_iqa.artifact import read_meta, resolve_adapter
    from lora_iqa.hub import push

    push(local, "alice/ct-lora")
    first = resolve_adapter("alice/ct-lora")
    n = len(hub.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert resolve_adapter("alice/ct-lora") == first
    assert read_meta("alice/ct-lora").to_dict() == json.loads((local / "lora_iqa.json").read_text())
    assert len(hub.requests) == n


def test_local_paths_are_never_looked_up(hub, tmp_path, monkeypatch):
    from lora_iqa.artifact import read_meta, resolve_adapter

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "lora").mkdir(parents=True)  # a local dir that looks like owner/name
    assert resolve_adapter("runs/lora") == Path("runs/lora")
    for path in ("./runs/x", "/abs/path", "a/b/c", "single"):  # not repo ids: left to the local checks
        assert resolve_adapter(path) == Path(path)
    with pytest.raises(LoraIqaError, match=r"runs/lora/lora_iqa.json: not found"):
        read_meta("runs/lora")
    assert hub.requests == []


@pytest.fixture
def full_dir(adapter_dir, tmp_path) -> Path:
    """A full fine-tune directory written by train.save_trained (a tiny base standing in for the trained model)."""
    from conftest import tiny_base

    from lora_iqa.artifact import BaseRef, read_meta
    from lora_iqa.methods.registry import get_method
    from lora_iqa.training.card import save_trained

    model, processor = tiny_base(seed=1)
    meta = read_meta(adapter_dir)
    config = {**meta.config, "adapter": {**meta.config["adapter"], "method": "full"}}
    meta = dataclasses.replace(meta, method="full", config=config, base=BaseRef("scratch", meta.base.fingerprint))
    out = tmp_path / "full"
    save_trained(get_method("full"), model, processor, out, meta)
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "model.safetensors").write_bytes(b"state")
    return out


def test_push_and_load_a_full_fine_tune(hub, full_dir, capsys):
    from transformers import BlipForConditionalGeneration

    from lora_iqa.methods.load import load_trained

    assert main(["push", str(full_dir), "--repo-id", "alice/ct-full"]) == 0
    files = hub.repos["alice/ct-full"]["files"]
    local = {p.name for p in full_dir.iterdir() if p.is_file()}
    assert {"config.json", "model.safetensors", "processor_config.json", "lora_iqa.json", "README.md"} <= local
    assert set(files) == local  # everything but checkpoints/
    for name, data in files.items():
        assert data == (full_dir / name).read_bytes(), name
    front = yaml.safe_load(files["README.md"].decode().split("---")[1])
    assert front["library_name"] == "transformers" and front["base_model"] == "scratch"
    assert "lora_iqa" in front["tags"] and "lora" not in front["tags"]
    model, processor, meta = load_trained("alice/ct-full")
    assert isinstance(model, BlipForConditionalGeneration) and meta.method == "full"


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "processor_config.json"])
def test_push_refuses_a_full_fine_tune_without(hub, full_dir, capsys, missing):
    (full_dir / missing).unlink()
    assert main(["push", str(full_dir), "--repo-id", "alice/ct-full"]) == 1
    one_error_line(capsys, full_dir / missing)
    assert hub.requests == []


def test_push_and_load_a_clip_prompt_directory(hub, clip_dir, natural, tmp_path, capsys):
    """A clip_prompt directory (prompt tensors + lora_iqa.json + card) pushes and loads back by repo id."""
    from lora_iqa.config import load_config
    from lora_iqa.methods.clip.prompt import WEIGHTS_NAME, ClipPromptLearner
    from lora_iqa.methods.load import load_trained
    from lora_iqa.training.run import run

    cfg = load_config(None, [f"output_dir={tmp_path / 'clip'}", f"base={clip_dir}", f"data.manifest={natural}",
                             "data.dimensions=[sharpness,noise,artifact,contrast,color,overall]", "data.domain=natural",
                             "adapter.method=clip_prompt", "train.max_steps=3", "train.eval_every=3", "train.save_every=0"])
    out = run(cfg, progress=False).dir
    assert main(["push", str(out), "--repo-id", "alice/nat-clip"]) == 0
    files = hub.repos["alice/nat-clip"]["files"]
    assert set(files) == {WEIGHTS_NAME, "lora_iqa.json", "README.md"}
    front = yaml.safe_load(files["README.md"].decode().split("---")[1])
    assert front["library_name"] == "lora_iqa" and "clip-prompt" in front["tags"]
    learner, _, meta = load_trained("alice/nat-clip")
    assert isinstance(learner, ClipPromptLearner) and meta.method == "clip_prompt"
    (out / WEIGHTS_NAME).write_bytes(b"")
    assert main(["push", str(out), "--repo-id", "alice/nat-clip"]) == 1
    one_error_line(capsys, out / WEIGHTS_NAME)
