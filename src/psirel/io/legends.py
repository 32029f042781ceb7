"""Land-cover legends: class codes of named products mapped onto psirel's semantic classes.

A model that learnt raw ESA WorldCover codes cannot read CORINE: the same forest is ``10`` in one
and ``311``–``313`` in the other. Every product is therefore mapped, through the shipped crosswalk
``io/data/lulc_crosswalk.csv`` (columns ``legend,code,label,semantic``; its header names each
product's official legend document), onto eight classes chosen for what changes radar scattering
and the density of persistent scatterers:

1. **built-up** — dihedral and trihedral reflectors (walls, roofs, poles): the bulk of PS, stable.
2. **forest** — volume scattering in the canopy, decorrelates within days: almost no PS.
3. **shrub/grass** — low vegetation (incl. pastures, moss, lichen): seasonal decorrelation, few PS
   except on rocks and structures in it.
4. **cropland** — ploughing, growth and harvest change the surface every season: PS only on field
   edges, farm buildings and roads.
5. **bare/rock** — stable surface scattering (rock, sand, quarries): many PS and distributed
   scatterers in arid terrain, but also active change in quarries and dumps.
6. **water** — specular reflection, no stable phase: a "point" there is noise.
7. **wetland** — water under vegetation (double bounce) that comes and goes: unstable phase.
8. **snow/ice** — melt, accumulation and flow decorrelate the phase.

Legends (:data:`LEGENDS`): ``worldcover`` (ESA WorldCover), ``corine`` (CORINE Land Cover level
3, 3-digit codes 111–523), ``nlcd`` (USGS/MRLC NLCD), ``cci`` (ESA CCI / Copernicus C3S land
cover), ``dynamic_world`` (Google Dynamic World ``label``, 0–8).

Each product's fill codes (:data:`FILL_CODES`, e.g. WorldCover ``0`` "no data", CORINE ``999``)
become NaN like a raster's nodata. A code the legend does not have becomes :data:`UNKNOWN`
(255, not a semantic class), so the vocabulary of a model (:class:`~psirel.features.normalize.
Normalizer`) treats it as unknown and the unknown-code counting still sees it.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from importlib import resources

import numpy as np

from psirel.errors import LandCoverLegendError

SEMANTIC = {1: "built-up", 2: "forest", 3: "shrub/grass", 4: "cropland", 5: "bare/rock",
            6: "water", 7: "wetland", 8: "snow/ice"}
UNKNOWN = 255  # semantic value of a code the legend does not have
LEGENDS = ("worldcover", "corine", "nlcd", "cci", "dynamic_world")
# "No data" / "unclassified" codes of each product's documentation: NaN, never a class.
FILL_CODES: dict[str, frozenset[int]] = {
    "worldcover": frozenset({0}),
    "corine": frozenset({990, 995, 999}),  # unclassified land, unclassified water, no data
    "nlcd": frozenset({0, 250}),  # unclassified / background, fill of Annual NLCD
    "cci": frozenset({0}),
    "dynamic_world": frozenset(),  # 0 is water
}
_ALIASES = {"esa_worldcover": "worldcover", "clc": "corine", "corine_land_cover": "corine",
            "esa_cci": "cci", "c3s": "cci", "cci_lc": "cci", "dw": "dynamic_world",
            "dynamicworld": "dynamic_world"}
# Among several legends holding every code seen, the smallest wins only when the codes cover at
# least this fraction of it (a WorldCover scene's codes are also CCI codes; few CCI scenes lack
# all of CCI's own codes: urban 190, water 210, grassland 130, the 11/12, 61/62… subclasses).
_MIN_COVERAGE = 0.5
_CSV = "lulc_crosswalk.csv"


def canonical(legend: str) -> str:
    """The legend's name in :data:`LEGENDS` (case, ``-`` and aliases such as ``clc`` allowed)."""
    key = str(legend).strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in LEGENDS:
        raise LandCoverLegendError(None, f"unknown land-cover legend '{legend}' (known: "
                                         f"{', '.join(LEGENDS)})")
    return key


@functools.cache
def _table() -> dict[str, dict[int, tuple[str, int]]]:
    """legend → code → (label, semantic), parsed once from the shipped CSV."""
    text = resources.files("psirel.io").joinpath("data", _CSV).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines()
                          if line.strip() and not line.lstrip().startswith("#"))
    table: dict[str, dict[int, tuple[str, int]]] = {name: {} for name in LEGENDS}
    for row in rows:
        table[row["legend"]][int(row["code"])] = (row["label"], int(row["semantic"]))
    return table


def crosswalk(legend: str) -> dict[int, int]:
    """``{code: semantic class}`` of one legend (a copy)."""
    return {c: s for c, (_, s) in _table()[canonical(legend)].items()}


def labels(legend: str) -> dict[int, str]:
    """``{code: label}`` of one legend, as its documentation names the classes."""
    return {c: lab for c, (lab, _) in _table()[canonical(legend)].items()}


@functools.cache
def _lut(legend: str) -> np.ndarray:
    """float32 lookup table indexed by code: semantic class, NaN at fill codes, else UNKNOWN."""
    codes = _table()[legend]
    size = max([*codes, *FILL_CODES[legend]]) + 1
    lut = np.full(size, UNKNOWN, dtype=np.float32)
    for c, (_, s) in codes.items():
        lut[c] = s
    lut[list(FILL_CODES[legend])] = np.nan
    lut.flags.writeable = False
    return lut


def to_semantic(values: np.ndarray, legend: str) -> np.ndarray:
    """Semantic classes (float32, same shape) of land-cover ``values`` coded in ``legend``.

    Values are taken as integers (truncated towards zero, as GDAL class rasters store them).
    NaN and the legend's fill codes give NaN; codes the legend does not have give
    :data:`UNKNOWN`.
    """
    lut = _lut(canonical(legend))
    v = np.asarray(values, dtype=np.float32)
    out = np.full(v.shape, UNKNOWN, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(v) & (v >= 0) & (v < len(lut))
    out[ok] = lut[v[ok].astype(np.int64)]
    out[np.isnan(v)] = np.nan
    return out


def unknown_codes(values: np.ndarray | Iterable, legend: str) -> list[int]:
    """Sorted distinct codes among finite ``values`` that ``legend`` neither has nor fills."""
    name = canonical(legend)
    v = np.asarray(values, dtype=np.float64).ravel()
    present = np.unique(np.trunc(v[np.isfinite(v)])).astype(np.int64)
    known = _table()[name].keys() | FILL_CODES[name]
    return [int(c) for c in present if int(c) not in known]


def legend_candidates(codes: Iterable[int]) -> list[str]:
    """Legends that have (or fill) every code given and at least one of them as a class."""
    seen = {int(c) for c in codes}
    out = []
    for name in LEGENDS:
        classes = _table()[name].keys()
        if seen <= classes | FILL_CODES[name] and seen & classes:
            out.append(name)
    return out


def detect_legend(codes: Iterable[int]) -> str | None:
    """The legend that the land-cover codes present in a raster follow, or None.

    A legend fits when it has every code (its fill codes aside). One fit: that legend. Several:
    the one with fewest codes, provided the codes seen cover at least half of it (so WorldCover's
    ``{10, 20, 30, 40, 50, 60, 80}`` is WorldCover although CCI has these codes too, while
    ``{11, 12}`` — NLCD water and ice, or CCI cropland — stays undecided). None when no legend
    fits or the choice is not clear.
    """
    seen = {int(c) for c in codes}
    fits = legend_candidates(seen)
    if len(fits) == 1:
        return fits[0]
    if not fits:
        return None
    sizes = sorted((len(_table()[name]), name) for name in fits)
    (n0, best), (n1, _) = sizes[0], sizes[1]
    covered = len(seen & _table()[best].keys()) / n0
    return best if n0 < n1 and covered >= _MIN_COVERAGE else None
