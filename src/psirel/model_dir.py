"""The model directory contract (DESIGN.md §5): ``model.json`` plus the artifacts it names.

``model.json`` holds the architecture, the feature and normalisation configuration, the decision
threshold, training metrics, library versions and the SHA-256 of every artifact. Loading checks
the format, the hashes and that the files exist, and refuses any mismatch with a one-line
:class:`~psirel.errors.ModelError`. Nothing is ever unpickled. This module needs no torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psirel.errors import ModelError
from psirel.io.atomic import atomic_write_text

FORMAT = "psirel-model/1"
MODEL_JSON = "model.json"


def sha256_file(path: Path | str, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelCard:
    """The parsed, verified ``model.json`` of a model directory."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def features(self) -> dict:
        return self.meta["features"]

    @property
    def encoder(self) -> str:
        """``"patch"`` or ``"shared-map"`` (models saved before the choice existed: patch)."""
        return self.config.get("encoder", "patch")

    @property
    def shared_map(self) -> bool:
        return self.encoder == "shared-map"

    def raster_options(self, lulc_legend: str | None = None) -> dict:
        """How to open rasters for this model (:class:`~psirel.io.rasters.RasterStack`
        keywords): on its grid's pixel size, and with land cover mapped to semantic classes
        through ``lulc_legend`` (default: detected) when the model learnt them; raw codes for a
        model saved before legends existed."""
        f = self.features
        legend = None if f.get("lulc_legend") is None else (lulc_legend or "auto")
        return {"pixel_m": float(f["pixel_m"]), "lulc_legend": legend}

    @property
    def members(self) -> int:
        """Ensemble members (1 for models saved before ensembles)."""
        return len(self.meta.get("ensemble", {}).get("weights", [None]))

    @property
    def embedding_dim(self) -> int:
        """Width of the stage-1 embeddings: every member's, side by side."""
        return int(self.config["emb_dim"]) * self.members

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def artifact(self, name: str) -> Path:
        """Path of a verified artifact; ModelError if the card does not list it."""
        if name not in self.meta.get("artifacts", {}):
            raise ModelError(self.path / MODEL_JSON, f"lists no artifact '{name}'")
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.meta.get("artifacts", {})


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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
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
    return ModelCard(model_dir, meta)


def register_artifact(meta: dict, model_dir: Path, name: str, **info: Any) -> None:
    """Record an artifact's SHA-256 (and any extra facts) in the card's metadata."""
    meta.setdefault("artifacts", {})[name] = {"sha256": sha256_file(model_dir / name), **info}


def save_card(model_dir: Path | str, meta: dict) -> Path:
    meta = {"format": FORMAT, **{k: v for k, v in meta.items() if k != "format"}}
    path = Path(model_dir) / MODEL_JSON
    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return path


def receptive_hops(config: dict) -> int:
    """Hops of the neighbourhood that decides a point's output exactly (torch-free).

    One per GNN layer, plus one when the model's edge summary is on: it reads each node's own
    edge list at the GNN's input, so the nodes at the outermost message-passing hop need their
    full rows too. Inference subgraphs of this many hops give every seed its whole-graph output;
    the pointwise-only model needs none.
    """
    if config.get("gnn", "none") == "none":
        return 0
    return int(config["gnn_layers"]) + (1 if config.get("edge_summary", True) else 0)
