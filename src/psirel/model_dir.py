"""The model directory contract (DESIGN.md §5): ``model.json`` plus the artifacts it names.

``model.json`` holds the architecture, the feature and normalisation configuration, the decision
threshold, training metrics, library versions and the SHA-256 of every artifact. Loading checks
the format, the hashes and that the files exist, migrates a card of an older version to the
current one (:func:`migrate`, the one place that knows the old layouts) and parses it into a
typed :class:`~psirel.model_card.ModelCard`; any mismatch is a one-line
:class:`~psirel.errors.ModelError`. Nothing is ever unpickled. This module needs no torch.

A model folder may come from anywhere, so the names its card lists are checked before any file
is opened (:func:`artifact_path`): plain relative names of regular files inside the folder,
never ``../x``, ``/dev/zero``, a symlink out, a directory or a FIFO. An ONNX artifact must be
self-contained (:func:`check_onnx_self_contained`): tensors in external data files are files the
hashes do not cover, which ONNX Runtime would open wherever they point.

Versions: ``psirel-model/1`` stored a flat ``config``; flags added later (``encoder``,
``edge_summary_robust``, ``temporal``, ensembles, calibration, land-cover legends...) were
absent from cards saved before them and meant "off". ``psirel-model/2`` stores the nested
:class:`~psirel.config.ModelConfig` and every entry explicitly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from psirel.config import ModelConfig
from psirel.errors import ModelError
from psirel.io.atomic import atomic_write_text
from psirel.model_card import MODEL_JSON, WEIGHTS, ModelCard

FORMAT = "psirel-model/2"
FORMATS = ("psirel-model/1", FORMAT)
__all__ = ["FORMAT", "MODEL_JSON", "ModelCard", "artifact_path", "check_onnx_self_contained",
           "load_card", "migrate", "register_artifact", "save_card", "sha256_file"]

# The architecture of a version-1 card where it names no value: ModelConfig's defaults then.
V1_CONFIG_DEFAULTS = {
    "lulc_dim": 4, "emb_dim": 64, "fusion": "concat", "depths": [2, 2, 4, 2],
    "dims": [12, 24, 48, 96], "scalar_hidden": 32, "drop_path_rate": 0.0, "gnn": "unimp",
    "gnn_hidden": 64, "gnn_layers": 2, "heads": 4, "edge_dim": 5, "dropout": 0.1,
    "head_hidden": None, "head_skip": True, "edge_summary": True, "edge_summary_signed": False,
    "edge_summary_robust": False, "patch_summary": False, "encoder": "patch", "patch_px": 80,
    "temporal": False, "temporal_start": 0, "temporal_quantiles": 16, "temporal_lags": 6,
    "temporal_extra": 5, "temporal_dim": 32,
}
_NO_CALIBRATION = "none"
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISSOCK, "a socket"))
# The ONNX messages (onnx/onnx.proto) on the way to a tensor: field number -> message it holds.
_ONNX_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 11: "attribute"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
# TensorProto fields: name, external_data, data_location (and its value EXTERNAL)
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1


def sha256_file(path: Path | str, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def load_card(model_dir: Path | str, verify: bool = True) -> ModelCard:
    """Read and verify ``model_dir/model.json`` and the hashes of every listed artifact.

    Artifact names are checked (:func:`artifact_path`) even when ``verify`` is False, as the
    callers that skip the hashes (export, INT8) then hash or open the files themselves."""
    model_dir = Path(model_dir)
    mj = model_dir / MODEL_JSON
    if not model_dir.is_dir():
        raise ModelError(model_dir, "model directory not found")
    if not mj.exists():
        raise ModelError(mj, "missing (not a psirel model directory)")
    if not mj.is_file():
        raise ModelError(mj, "is not a regular file")
    try:
        meta = json.loads(mj.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(mj, f"not valid JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ModelError(mj, f"unknown format {found!r} (expected {FORMAT!r})")
    for key in ("config", "features", "threshold", "artifacts"):
        if key not in meta:
            raise ModelError(mj, f"has no '{key}' entry")
    if not isinstance(meta["artifacts"], dict):
        raise ModelError(mj, "its 'artifacts' entry is not an object")
    for name, info in meta["artifacts"].items():  # names checked even unverified: export hashes
        p = artifact_path(model_dir, name, must_exist=verify)
        if not verify:
            continue
        if sha256_file(p) != (info.get("sha256") if isinstance(info, dict) else None):
            raise ModelError(p, "SHA-256 does not match model.json (file corrupt or replaced)")
        if name.lower().endswith(".onnx"):
            check_onnx_self_contained(p, mj)
    return ModelCard.parse(model_dir, migrate(meta, mj))


def artifact_path(model_dir: Path | str, name: str, must_exist: bool = True) -> Path:
    """``model_dir/name`` once it is safe to open, checked before anything reads it.

    The name must be a plain relative POSIX name (no absolute path, no ``..``, ``.`` or empty
    component, no backslash) that resolves, symlinks followed, inside the folder to a regular
    file: hashing ``/dev/zero`` or a FIFO would never end, and a file outside is no part of the
    model. A missing file is a ModelError naming it, or passes when not ``must_exist`` (export
    replaces some); every other violation is a ModelError naming ``model.json`` and the name.
    """
    model_dir = Path(model_dir)
    mj = model_dir / MODEL_JSON
    why = _bad_name(name)
    if why is not None:
        raise ModelError(mj, f"artifact '{name}' {why}")
    path = model_dir / name
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: RuntimeError before Python 3.13
        raise ModelError(mj, f"artifact '{name}' cannot be resolved (a symlink loop?)") from None
    if not real.is_relative_to(model_dir.resolve()):
        raise ModelError(mj, f"artifact '{name}' resolves outside the model folder (to {real})")
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        if must_exist:
            raise ModelError(path, "listed in model.json but missing") from None
        return path
    except OSError as exc:
        raise ModelError(mj, f"artifact '{name}' cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = next((k for is_kind, k in _FILE_KINDS if is_kind(mode)), "not a file")
        raise ModelError(mj, f"artifact '{name}' is {kind}, not a regular file")
    return path


def _bad_name(name: object) -> str | None:
    """Why ``name`` is not a plain relative name of a file in the model folder (None if it is)."""
    if not isinstance(name, str) or not name:
        return "is not a file name"
    if "\\" in name or "\0" in name:
        return "has a backslash or NUL character (names are relative POSIX paths)"
    if name.startswith("/"):
        return "is an absolute path (names are relative to the model folder)"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component (it would leave the model folder)"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' component (not a plain relative name)"
    return None


def check_onnx_self_contained(path: Path | str, model_json: Path | str) -> None:
    """Refuse an ONNX file with tensors in external data files (ModelError naming the artifact).

    psirel never writes one; the card's hashes would not cover the data files, and ONNX Runtime
    opens them wherever they point (before 1.24 even outside the folder). Read without the
    ``onnx`` package, which is an extra: a walk of the protobuf wire format through the messages
    that can hold a tensor (graphs, subgraphs, nodes' attributes, functions, sparse tensors). A
    file that is not protobuf passes: ONNX Runtime refuses it when it opens it, naming it.
    """
    path, model_json = Path(path), Path(model_json)
    try:
        found = _external_tensor(path.read_bytes())
    except ValueError:
        return
    if found is not None:
        try:
            name = path.relative_to(model_json.parent).as_posix()
        except ValueError:
            name = path.name
        raise ModelError(model_json, f"artifact '{name}' keeps tensor '{found}' in an external "
                                     "data file (psirel ONNX models are self-contained)")


def _external_tensor(buf: bytes) -> str | None:
    """Name of the first tensor of an ONNX model in ``buf`` whose data is external, else None;
    ValueError where ``buf`` is not protobuf."""
    todo = [("model", 0, len(buf))]
    while todo:  # a stack, not recursion: subgraphs may nest deeply
        kind, start, end = todo.pop()
        if kind != "tensor":
            sub = _ONNX_FIELDS[kind]
            todo.extend((sub[f], a, b) for f, wire, a, b in _fields(buf, start, end)
                        if wire == 2 and f in sub)
            continue
        name, external = "", False
        for f, wire, a, b in _fields(buf, start, end):
            if f == _TENSOR_NAME and wire == 2:
                name = buf[a:b].decode("utf-8", "replace")
            external |= (f == _EXTERNAL_DATA and wire == 2) or \
                (f == _DATA_LOCATION and wire == 0 and a == _EXTERNAL)
        if external:
            return name
    return None


def _fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field, wire type, a, b)`` of each field of the protobuf message ``buf[pos:end]``: a
    varint's value in ``a``, a length-delimited field's bytes at ``a:b``. Fixed-width fields and
    groups are skipped; ValueError where the bytes are not protobuf."""
    groups = 0
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire, a, b = key >> 3, key & 7, 0, 0
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            a, pos = _varint(buf, pos, end)
        elif wire == 2:
            n, a = _varint(buf, pos, end)
            pos = b = a + n
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 3 or (wire == 4 and groups):
            groups += 1 if wire == 3 else -1
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("truncated message")
        if wire in (0, 2) and not groups:
            yield field, wire, a, b
    if groups or pos != end:
        raise ValueError("truncated message")


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 70:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def migrate(meta: dict, path: Path | str = MODEL_JSON) -> dict:
    """A card of any known version as the current one (a new dict; the file is not touched)."""
    meta = copy.deepcopy(meta)
    if meta.get("format") == "psirel-model/1":
        meta = _from_v1(meta, path)
    return meta


def _from_v1(meta: dict, path) -> dict:
    try:
        flat = {**V1_CONFIG_DEFAULTS, **meta["config"]}
        cfg = ModelConfig.from_flat(**flat)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(path, f"invalid architecture config ({exc})") from None
    meta["config"] = cfg.to_dict()
    features = meta.setdefault("features", {})
    features.setdefault("lulc_legend", None)           # raw land-cover codes
    features.setdefault("n_dates_trained", 0)
    features.setdefault("edge_features", [])
    features.setdefault("patch_px", cfg.encoder.patch_px)
    meta.setdefault("ensemble", {"members": 1, "weights": [WEIGHTS["model"]]})
    n = len(meta["ensemble"]["weights"])
    identity = {"method": _NO_CALIBRATION, "scale": [1.0] * n, "bias": [0.0] * n}
    if not meta.get("calibration"):
        meta["calibration"] = identity
    pw = meta.get("pointwise_only")
    if pw is not None and not pw.get("calibration"):
        pw["calibration"] = {**identity, "scale": [1.0], "bias": [0.0]}
    meta["format"] = FORMAT
    return meta


def register_artifact(meta: dict, model_dir: Path, name: str, **info: Any) -> None:
    """Record an artifact's SHA-256 (and any extra facts) in the card's metadata."""
    meta.setdefault("artifacts", {})[name] = {"sha256": sha256_file(model_dir / name), **info}


def save_card(model_dir: Path | str, meta: dict) -> Path:
    """Write ``model.json`` atomically, as the current version."""
    if meta.get("format", FORMAT) != FORMAT:
        meta = migrate(meta)
    meta = {"format": FORMAT, **{k: v for k, v in meta.items() if k != "format"}}
    path = Path(model_dir) / MODEL_JSON
    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return path
