"""Weights on disk as safetensors (no pickle), loaded back into a model built from model.json."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from psirel.errors import ModelError, first_line
from psirel.io.atomic import atomic_path
from psirel.model_card import MODEL_JSON, WEIGHTS, ModelCard
from psirel.models.ensemble import CalibratedEnsemble
from psirel.models.reliability import ReliabilityModel

__all__ = ["WEIGHTS", "load_model", "load_predictor", "load_weights", "save_weights"]


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
        raise ModelError(path, f"corrupt weights ({first_line(exc, 120)})") from None
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


def load_model(card: ModelCard, variant: str = "model", member: int = 0) -> ReliabilityModel:
    """Build the network described by a verified card and load its weights (eval mode).

    ``variant`` is ``"model"`` (PW encoder + GNN) or ``"pointwise_only"``; ``member`` the
    ensemble member (uncalibrated logits: :func:`load_predictor` is what inference runs).
    """
    names = card.variant(variant).weights
    if not 0 <= member < len(names):
        raise ModelError(card.path / MODEL_JSON, f"has no ensemble member {member}")
    try:
        model = ReliabilityModel(card.variant_config(variant))
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(card.path / MODEL_JSON, f"invalid architecture config ({exc})") from None
    load_weights(model, card.artifact(names[member]))
    return model.eval()


def load_predictor(card: ModelCard, variant: str = "model") -> CalibratedEnsemble:
    """Every member of a variant with its calibration: what inference runs (eval mode)."""
    v = card.variant(variant)
    members = [load_model(card, variant, i) for i in range(len(v.weights))]
    return CalibratedEnsemble(members, list(v.scale), list(v.bias)).eval()
