"""The model's architecture and training hyper-parameters, their real defaults, once (torch-free).

A model is :class:`ModelConfig`: the data's sizes (land-cover classes, scalar columns) and three
parts, each with the defaults ``psirel train`` uses (timm's rule: the architecture in one
signature, the blocks registered by name):

- :class:`EncoderConfig`: the pointwise (PW) encoder, ``kind`` one of :data:`ENCODERS`;
- :class:`GraphConfig`: the GNN encoder, ``kind`` one of :data:`GNN_TYPES` or ``"none"`` (the
  pointwise-only variant), with the edge summary fed to it;
- :class:`HeadConfig`: the output layer.

:class:`TrainSettings` holds ``psirel train``'s hyper-parameters; the ones it shares with the
architecture default to the architecture's defaults. The CLI takes its choices (``--gnn``,
``--encoder``, ``--fusion``) from the registries here. ``model.json`` stores
:meth:`ModelConfig.to_dict` (nested, card version 2); :func:`psirel.model_dir.migrate` turns an
older card's flat ``config`` into it through :meth:`ModelConfig.from_flat`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from psirel.features.scalars import SCALAR_FEATURES, TEMPORAL_START
from psirel.features.temporal import TEMPORAL_LAYOUT
from psirel.graph.edges import EDGE_FEATURES


@dataclass(frozen=True)
class GNNType:
    """A registered message-passing layer: its CLI name, paper and constraints."""

    name: str
    title: str
    paper: str
    module: str              # where the layer lives (psirel.models.<module>)
    multi_head: bool         # hidden width split over attention heads


GNN_TYPES: dict[str, GNNType] = {t.name: t for t in (
    GNNType("unimp", "UniMP (TransformerConv)", "Shi et al. 2021, arXiv:2009.03509", "unimp",
            True),
    GNNType("gatv2", "GATv2", "Brody et al. 2022, arXiv:2105.14491", "gatv2", True),
    GNNType("gen", "DeeperGCN (GENConv)", "Li et al. 2020, arXiv:2006.07739", "gen", False),
)}
GNN_CHOICES = (*GNN_TYPES, "none")     # "none": pointwise-only (embedding → head)
ENCODERS = {"shared-map": "one CNN pass per raster window, sampled at the points",
            "patch": "an 80×80 patch per point (the paper's encoder)"}
FUSIONS = {"concat": "concatenate image and scalar embeddings",
           "film": "scalars modulate the image features (FiLM; patch encoder only)"}


def choices(registry) -> str:
    """``"a | b | c"``: a registry's names, for help texts and errors."""
    return " | ".join(registry)


@dataclass
class EncoderConfig:
    """The pointwise encoder: a ConvNeXt (``depths``/``dims``) on the raster channels (land
    cover embedded in ``lulc_dim``), fused with an MLP (``scalar_hidden``) of the scalars into
    ``emb_dim``. ``kind="patch"``: a ``patch_px`` patch per point; ``"shared-map"``: one pass per
    window, sampled at the points (fusion by concatenation only). ``patch_summary`` feeds the
    scalar branch the patch statistics; ``temporal`` embeds the scalars' temporal block
    (columns ``[temporal_start, temporal_start + Q + 2L + E)``, Q, L, E = quantiles, lags,
    extra) with a TemporalEncoder of width ``temporal_dim``."""

    kind: str = "shared-map"
    fusion: str = "concat"
    lulc_dim: int = 4
    emb_dim: int = 64
    depths: tuple[int, ...] = (2, 2, 4, 2)
    dims: tuple[int, ...] = (12, 24, 48, 96)
    scalar_hidden: int = 64
    drop_path_rate: float = 0.0
    patch_summary: bool = True
    patch_px: int = 80
    temporal: bool = True
    temporal_start: int = TEMPORAL_START
    temporal_quantiles: int = TEMPORAL_LAYOUT["n_quantiles"]
    temporal_lags: int = TEMPORAL_LAYOUT["n_lags"]
    temporal_extra: int = TEMPORAL_LAYOUT["n_extra"]
    temporal_dim: int = 32

    def __post_init__(self) -> None:
        self.depths = tuple(int(d) for d in self.depths)
        self.dims = tuple(int(d) for d in self.dims)

    @property
    def temporal_width(self) -> int:
        return self.temporal_quantiles + 2 * self.temporal_lags + self.temporal_extra

    def temporal_kwargs(self) -> dict:
        """The PW encoders' temporal arguments."""
        return {k: getattr(self, k) for k in (
            "temporal", "temporal_start", "temporal_quantiles", "temporal_lags",
            "temporal_extra", "temporal_dim")}


@dataclass
class GraphConfig:
    """The GNN encoder: ``layers`` layers of ``kind`` (``hidden`` wide, ``heads`` heads) over
    ``edge_dim`` edge features. ``edge_summary`` adds to each embedding a projection of its
    edges' mean/min |features| and degree; ``edge_summary_signed`` the signed means and the
    Δheight·Δvelocity product; ``edge_summary_robust`` their medians and MADs."""

    kind: str = "unimp"
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    edge_dim: int = len(EDGE_FEATURES)
    dropout: float = 0.1
    edge_summary: bool = True
    edge_summary_signed: bool = True
    edge_summary_robust: bool = True


@dataclass
class HeadConfig:
    """The output layer: an MLP (``hidden``; None: linear) on ``[emb, gnn(emb)]`` with
    ``skip``, else on ``gnn(emb)``."""

    hidden: int | None = None
    skip: bool = True
    dropout: float = 0.1


# The flat names of card version 1 (and of ModelConfig.from_flat), part by part.
_FLAT = {
    "encoder": {"encoder": "kind", "fusion": "fusion", "lulc_dim": "lulc_dim",
                "emb_dim": "emb_dim", "depths": "depths", "dims": "dims",
                "scalar_hidden": "scalar_hidden", "drop_path_rate": "drop_path_rate",
                "patch_summary": "patch_summary", "patch_px": "patch_px",
                **{k: k for k in ("temporal", "temporal_start", "temporal_quantiles",
                                  "temporal_lags", "temporal_extra", "temporal_dim")}},
    "graph": {"gnn": "kind", "gnn_hidden": "hidden", "gnn_layers": "layers", "heads": "heads",
              "edge_dim": "edge_dim", "dropout": "dropout", "edge_summary": "edge_summary",
              "edge_summary_signed": "edge_summary_signed",
              "edge_summary_robust": "edge_summary_robust"},
    "head": {"head_hidden": "hidden", "head_skip": "skip", "dropout": "dropout"},
}
_PARTS = {"encoder": EncoderConfig, "graph": GraphConfig, "head": HeadConfig}


@dataclass
class ModelConfig:
    """Every architecture hyper-parameter of the reliability model (``model.json`` "config")."""

    n_lulc: int
    n_scalars: int
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    head: HeadConfig = field(default_factory=HeadConfig)

    def __post_init__(self) -> None:
        for name, part in _PARTS.items():
            if isinstance(getattr(self, name), dict):
                setattr(self, name, _part(part, getattr(self, name)))
        e, g = self.encoder, self.graph
        if e.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {tuple(FUSIONS)}, not {e.fusion!r}")
        if e.kind not in ENCODERS:
            raise ValueError(f"encoder must be one of {tuple(ENCODERS)}, not {e.kind!r}")
        if e.kind == "shared-map" and e.fusion != "concat":
            raise ValueError("the shared-map encoder fuses by concatenation only")
        if g.kind not in GNN_CHOICES:
            raise ValueError(f"gnn must be one of {GNN_CHOICES}, not {g.kind!r}")
        if len(e.depths) != len(e.dims):
            raise ValueError(f"depths {e.depths} and dims {e.dims} differ in length")
        if e.temporal and not 0 <= e.temporal_start <= self.n_scalars - e.temporal_width:
            raise ValueError(f"temporal block [{e.temporal_start}, "
                             f"{e.temporal_start + e.temporal_width}) lies outside the "
                             f"{self.n_scalars} scalar columns")
        if g.kind in GNN_TYPES and GNN_TYPES[g.kind].multi_head and g.hidden % g.heads:
            raise ValueError(f"gnn_hidden ({g.hidden}) must be a multiple of heads ({g.heads})")

    @property
    def has_graph(self) -> bool:
        return self.graph.kind != "none"

    def receptive_hops(self) -> int:
        """Hops of the neighbourhood that decides a point's output exactly.

        One per GNN layer, plus one with the edge summary: it reads each node's own edge list
        at the GNN's input, so the nodes at the outermost hop need their full rows too.
        Subgraphs of this many hops give every seed its whole-graph output; the pointwise-only
        model needs none.
        """
        if not self.has_graph:
            return 0
        return self.graph.layers + (1 if self.graph.edge_summary else 0)

    def replace(self, **flat) -> ModelConfig:
        """A copy with some values changed, named as in :meth:`from_flat` (the rest kept as
        they are, a head dropout different from the graph's included)."""
        return ModelConfig.from_dict(_apply_flat(self.to_dict(), flat))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoder"]["depths"], d["encoder"]["dims"] = list(self.encoder.depths), \
            list(self.encoder.dims)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_flat(cls, n_lulc: int, n_scalars: int, **flat) -> ModelConfig:
        """Built from the flat names of card version 1 (``gnn``, ``gnn_hidden``, ``emb_dim``,
        ``encoder``, ``head_skip``...); what is not named keeps its default."""
        base = {"n_lulc": n_lulc, "n_scalars": n_scalars,
                **{part: asdict(cls_()) for part, cls_ in _PARTS.items()}}
        return cls.from_dict(_apply_flat(base, flat))

    def to_flat(self) -> dict:
        """The inverse of :meth:`from_flat`."""
        flat = {"n_lulc": self.n_lulc, "n_scalars": self.n_scalars}
        for part, names in _FLAT.items():
            for k, attr in names.items():
                flat.setdefault(k, getattr(getattr(self, part), attr))
        return flat


def _apply_flat(d: dict, flat: dict) -> dict:
    """``d`` (a nested config dict) with the values named by v1's flat names set."""
    flat = dict(flat)
    for k in ("n_lulc", "n_scalars"):
        d[k] = flat.pop(k, d[k])
    unknown = sorted(set(flat) - {k for names in _FLAT.values() for k in names})
    if unknown:
        raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
    for part, names in _FLAT.items():
        d[part].update({attr: flat[k] for k, attr in names.items() if k in flat})
    return d


def _part(cls, kw: dict):
    unknown = sorted(set(kw) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    return cls(**kw)


@dataclass
class TrainSettings:
    """Hyper-parameters of ``psirel train`` (all recorded in model.json). Those that are the
    architecture's default to :class:`ModelConfig`'s parts."""

    gnn: str = GraphConfig.kind
    layers: int = GraphConfig.layers
    epochs: int = 12
    batch_size: int = 256
    fanout: tuple[int, ...] = (8, 4)
    lr: float = 3e-3
    weight_decay: float = 0.05
    patience: int = 4
    seed: int = 0
    emb_dim: int = EncoderConfig.emb_dim
    hidden: int = GraphConfig.hidden
    heads: int = GraphConfig.heads
    dropout: float = GraphConfig.dropout
    fusion: str = EncoderConfig.fusion
    encoder: str = EncoderConfig.kind
    patch_summary: bool = EncoderConfig.patch_summary
    k: int = 16
    r_max_m: float = 100.0
    val_fraction: float = 0.2
    ensemble: int = 3                     # independently seeded members (seed, seed + 1, ...)
    pixel_m: float | None = None          # the model's grid; None: the first cloud's DEM's
    lulc_legend: str | None = "auto"      # land-cover legend (None: raw codes, as before)
    max_steps_per_epoch: int | None = None   # tests and demos cap an epoch's length
    # Small training sets get more epochs: at least this many optimiser steps per member
    # (not with max_steps_per_epoch). On three 10,000-point worlds, 20 epochs instead of 12
    # raised the held-out AP at each training seed tried (README, "Results").
    min_steps: int = 1800
    ema: float = 0.0                      # decay of an exponential moving average of the
                                          # weights, validated and kept instead (0 = off)
    temporal: bool = EncoderConfig.temporal   # embed the scalars' temporal block
    device: str = "cpu"

    def to_json(self) -> dict:
        d = asdict(self)
        d["fanout"] = list(self.fanout)
        return d

    def model_config(self, n_lulc: int, n_scalars: int, gnn: str | None = None) -> ModelConfig:
        """The architecture these settings train (``gnn``: another GNN kind, e.g. "none")."""
        if self.temporal and n_scalars != len(SCALAR_FEATURES):
            raise ValueError(f"{n_scalars} scalar columns, but the temporal encoder expects the "
                             f"{len(SCALAR_FEATURES)} of psirel.features.scalars.SCALAR_FEATURES")
        return ModelConfig(
            n_lulc=n_lulc, n_scalars=n_scalars,
            encoder=EncoderConfig(kind=self.encoder, fusion=self.fusion, emb_dim=self.emb_dim,
                                  patch_summary=self.patch_summary, temporal=self.temporal),
            graph=GraphConfig(kind=gnn or self.gnn, hidden=self.hidden, layers=self.layers,
                              heads=self.heads, dropout=self.dropout),
            head=HeadConfig(dropout=self.dropout))

