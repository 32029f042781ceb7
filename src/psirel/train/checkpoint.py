"""Weights on disk as safetensors (no pickle), loaded back into a model built from model.json."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from psirel.errors import ModelError
from psirel.io.atomic import atomic_path
from psirel.model_dir import ModelCard
from psirel.models.reliability import ModelConfig, ReliabilityModel


def save_weights(model: torch.nn.Module, path: Path) -> Path:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a safetensors file into ``model``; corrupt files and shape mismatches are ModelError."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(path, f"corrupt weights ({str(exc).splitlines()[0][:120]})") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shapes differ from the architecture in model.json
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)[:160]
        raise ModelError(path, f"weights do not match the architecture in model.json ({first})"
                         ) from None
    if missing or unexpected:
        raise ModelError(path, f"weights do not match the architecture in model.json "
                               f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model


def load_model(card: ModelCard, variant: str = "model") -> ReliabilityModel:
    """Build the network described by a verified card and load its weights (eval mode).

    ``variant`` is ``"model"`` (PW encoder + GNN) or ``"pointwise_only"``.
    """
    cfg = ModelConfig.from_dict(card.config)
    name = "weights.safetensors"
    if variant == "pointwise_only":
        cfg = ModelConfig.from_dict({**card.config, "gnn": "none"})
        name = "pointwise_only.safetensors"
    try:
        model = ReliabilityModel(cfg)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(card.path / "model.json", f"invalid architecture config ({exc})") from None
    load_weights(model, card.artifact(name))
    return model.eval()
