"""The model directory contract (DESIGN.md §5): ``model.json`` plus the artifacts it names.

``model.json`` holds the architecture, the feature and normalisation configuration, the decision
threshold, training metrics, library versions and the SHA-256 of every artifact. Loading checks
the format, the hashes and that the files exist, migrates a card of an older version to the
current one (:func:`migrate`, the one place that knows the old layouts) and parses it into a
typed :class:`~psirel.model_card.ModelCard`; any mismatch is a one-line
:class:`~psirel.errors.ModelError`. Nothing is ever unpickled. This module needs no torch.

Versions: ``psirel-model/1`` stored a flat ``config``; flags added later (``encoder``,
``edge_summary_robust``, ``temporal``, ensembles, calibration, land-cover legends...) were
absent from cards saved before them and meant "off". ``psirel-model/2`` stores the nested
:class:`~psirel.config.ModelConfig` and every entry explicitly.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from psirel.config import ModelConfig
from psirel.errors import ModelError
from psirel.io.atomic import atomic_write_text
from psirel.model_card import MODEL_JSON, WEIGHTS, ModelCard

FORMAT = "psirel-model/2"
FORMATS = ("psirel-model/1", FORMAT)
__all__ = ["FORMAT", "MODEL_JSON", "ModelCard", "load_card", "migrate", "register_artifact",
           "save_card", "sha256_file"]

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


def sha256_file(path: Path | str, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def load_card(model_dir: Path | str, verify: bool = True) -> ModelCard:
    """Read and verify ``model_dir/model.json`` and the hashes of every listed artifact."""
    model_dir = Path(model_dir)
    mj = model_dir / MODEL_JSON
    if not model_dir.is_dir():
        raise ModelError(model_dir, "model directory not found")
    if not mj.exists():
        raise ModelError(mj, "missing (not a psirel model directory)")
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
    if verify:
        for name, info in meta["artifacts"].items():
            p = model_dir / name
            if not p.exists():
                raise ModelError(p, "listed in model.json but missing")
            if sha256_file(p) != info.get("sha256"):
                raise ModelError(p, "SHA-256 does not match model.json (file corrupt or replaced)")
    return ModelCard.parse(model_dir, migrate(meta, mj))


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
