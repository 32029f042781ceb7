"""Feature normalisation: statistics learnt once from training data, stored as plain JSON.

A :class:`Normalizer` turns raw patches ``[n, 3, P, P]`` (DEM m, LULC code, amplitude) into the
model's input ``[n, 4, P, P]`` and standardises scalar features. It travels inside ``model.json``
(:meth:`Normalizer.to_json`), so inference normalises exactly as training did.

Channels of the model input:

0. ``(dem - dem at the point's pixel) / dem_rel_std_m``: heights relative to the point itself, so
   absolute elevation (which differs between scenes) cannot leak and the model sees local relief.
1. LULC vocabulary index as float: ``1 + position of the code in lulc_codes``; 0 for a code never
   seen in training, for nodata and for invalid pixels (the model embeds this index).
2. amplitude in dB, standardised: ``(10 log10(max(a, amp_eps)) - amp_db_mean) / amp_db_std``
   (the log is skipped when ``amp_is_db``).
3. validity mask, 1 where all three layers have data, else 0.

Invalid pixels carry 0 in channels 0 and 2 (the training mean of channel 2, and the point's own
height in channel 0), so padding looks neutral and the mask channel says it is padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from psirel.errors import PsirelError
from psirel.features.patches import BLOCK_PX, PATCH_PX, gather_patches, iter_patch_chunks
from psirel.features.robust import MAD_TO_STD
from psirel.features.temporal import PRESCALED_FEATURES, SCALE_FLOORS
from psirel.io.rasters import LAYERS, RasterStack

FORMAT = "psirel-normalizer/1"
N_PATCH_CHANNELS = 4
_DEM, _LULC, _AMP = (LAYERS.index(k) for k in ("dem", "lulc", "amplitude"))
# Codes up to this value are mapped with a lookup table (one gather); others by binary search.
_LUT_MAX_CODE = 1 << 16


def amplitude_db(a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``10 log10(max(a, eps))`` in float32 (NaN stays NaN)."""
    a = np.maximum(np.asarray(a, dtype=np.float32), np.float32(eps))
    return np.multiply(np.log10(a), np.float32(10.0), dtype=np.float32)


@dataclass
class Normalizer:
    """Normalisation statistics of a trained model (see the module docstring for the channels).

    Attributes:
        lulc_codes: sorted land-cover codes known to the model; code ``lulc_codes[i]`` has
            index ``i + 1``, index 0 means unknown / nodata.
        dem_rel_std_m: std of ``dem - centre height`` over valid pixels of training patches (m).
        amp_db_mean, amp_db_std: mean and std of amplitude in dB over valid training pixels.
        scalar_mean, scalar_std, scalar_names: per-column standardisation of scalar features.
        amp_is_db: the amplitude raster is already in dB (no log taken).
        amp_eps: floor of linear amplitude before the log.
        patch_px: patch edge the statistics were computed for.
    """

    lulc_codes: list[int]
    dem_rel_std_m: float
    amp_db_mean: float
    amp_db_std: float
    scalar_mean: list[float]
    scalar_std: list[float]
    scalar_names: list[str]
    amp_is_db: bool = False
    amp_eps: float = 1e-6
    patch_px: int = PATCH_PX
    _lut: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.lulc_codes = sorted(int(c) for c in self.lulc_codes)
        if len(set(self.lulc_codes)) != len(self.lulc_codes):
            raise ValueError("normalizer: lulc_codes contain duplicates")
        self.scalar_mean = [float(v) for v in self.scalar_mean]
        self.scalar_std = [float(v) for v in self.scalar_std]
        self.scalar_names = [str(v) for v in self.scalar_names]
        if not (len(self.scalar_mean) == len(self.scalar_std) == len(self.scalar_names)):
            raise ValueError("normalizer: scalar_mean, scalar_std and scalar_names differ in "
                             "length")
        for name in ("dem_rel_std_m", "amp_db_std"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"normalizer: {name} must be positive, got {v}")
            setattr(self, name, v)
        self.amp_db_mean = float(self.amp_db_mean)
        self.amp_is_db, self.amp_eps = bool(self.amp_is_db), float(self.amp_eps)
        self.patch_px = int(self.patch_px)
        codes = np.asarray(self.lulc_codes, dtype=np.int64)
        if len(codes) and codes.min() >= 0 and codes.max() < _LUT_MAX_CODE:
            # lut[code + 1] = index; lut[0] and the last entry are 'unknown' and catch every
            # value below 0 or above the largest code once clipped.
            lut = np.zeros(int(codes.max()) + 3, dtype=np.float32)
            lut[codes + 1] = np.arange(1, len(codes) + 1, dtype=np.float32)
            self._lut = lut

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        """Plain-JSON dict (ints, floats, strings, lists) for ``model.json``."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {"format": FORMAT, **d}

    @classmethod
    def from_json(cls, d: dict) -> Normalizer:
        """Inverse of :meth:`to_json`; ValueError naming the first missing or unknown field."""
        if not isinstance(d, dict):
            raise ValueError(f"normalizer: expected a JSON object, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise ValueError(f"normalizer: unknown format {d.get('format')!r} "
                             f"(expected {FORMAT!r})")
        fields = {k: v for k, v in d.items() if k != "format"}
        names = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ValueError(f"normalizer: unknown field '{unknown[0]}'")
        required = ("lulc_codes", "dem_rel_std_m", "amp_db_mean", "amp_db_std", "scalar_mean",
                    "scalar_std", "scalar_names")
        for k in required:
            if k not in fields:
                raise ValueError(f"normalizer: missing field '{k}'")
        return cls(**fields)

    # ------------------------------------------------------------------ patches
    def lulc_index(self, codes: np.ndarray) -> np.ndarray:
        """Vocabulary index (float32) of raw LULC values; 0 for unknown codes and NaN.

        Values are taken as integers (truncated towards zero), as GDAL class rasters store them.
        """
        v = np.asarray(codes, dtype=np.float32)
        if not self.lulc_codes:
            return np.zeros(v.shape, dtype=np.float32)
        if self._lut is not None:
            vi = np.empty(v.shape, dtype=np.int32)
            with np.errstate(invalid="ignore"):  # NaN (reset below) and huge values
                np.add(v, np.float32(1), out=vi, casting="unsafe")
            np.clip(vi, 0, len(self._lut) - 1, out=vi)
            res = np.take(self._lut, vi)
            np.copyto(res, 0.0, where=np.isnan(v))
            return res
        table = np.asarray(self.lulc_codes, dtype=np.float64)
        vt = np.trunc(v.astype(np.float64))
        pos = np.minimum(np.searchsorted(table, vt), len(table) - 1)
        return np.where(table[pos] == vt, pos + 1, 0).astype(np.float32)

    def pixel_channels(self, values: np.ndarray, valid: np.ndarray,
                       out: np.ndarray | None = None) -> np.ndarray:
        """Per-pixel part of the normalisation, for any leading shape.

        ``values [..., 3, h, w]`` raw layers and ``valid [..., h, w]`` -> ``[..., 4, h, w]``
        float32: channel 0 the raw DEM (the relief needs the patch centre, see
        :meth:`patches`), channels 1-3 final. Used on whole windows by :meth:`extract`.
        """
        values = np.asarray(values)
        if out is None:
            out = np.empty((*values.shape[:-3], N_PATCH_CHANNELS, *values.shape[-2:]),
                           dtype=np.float32)
        invalid = ~valid
        out[..., 0, :, :] = values[..., _DEM, :, :]

        idx = out[..., 1, :, :]
        idx[...] = self.lulc_index(values[..., _LULC, :, :])
        np.copyto(idx, 0.0, where=invalid)

        ch = out[..., 2, :, :]
        if self.amp_is_db:
            ch[...] = values[..., _AMP, :, :]
            ch *= np.float32(1.0 / self.amp_db_std)
        else:
            np.maximum(values[..., _AMP, :, :], np.float32(self.amp_eps), out=ch)
            np.log10(ch, out=ch)
            ch *= np.float32(10.0 / self.amp_db_std)
        ch -= np.float32(self.amp_db_mean / self.amp_db_std)
        np.copyto(ch, 0.0, where=invalid)

        out[..., 3, :, :] = valid
        return out

    def _finish(self, out: np.ndarray, valid: np.ndarray) -> int:
        """Turn channel 0 of ``out [n, 4, P, P]`` from raw DEM into relief; count unknown codes."""
        p = out.shape[-1]
        c = p // 2
        dem = out[:, 0]
        centre = dem[:, c, c].copy()
        missing = ~np.isfinite(centre)
        if missing.any():  # point on a DEM hole: fall back to the patch's mean valid height
            d, m = dem[missing], valid[missing] & np.isfinite(dem[missing])
            k = m.sum(axis=(1, 2))
            s = np.where(m, d, 0).sum(axis=(1, 2), dtype=np.float64)
            centre[missing] = np.where(k > 0, s / np.maximum(k, 1), 0.0)
        dem -= centre[:, None, None]
        dem *= np.float32(1.0 / self.dem_rel_std_m)
        np.copyto(dem, 0.0, where=~valid)
        return int(((out[:, 1] == 0) & valid).any(axis=(1, 2)).sum())

    def _check_out(self, out: np.ndarray | None, n: int, p: int) -> np.ndarray:
        if out is None:
            return np.empty((n, N_PATCH_CHANNELS, p, p), dtype=np.float32)
        if out.dtype != np.float32 or out.ndim != 4 \
                or out.shape[1:] != (N_PATCH_CHANNELS, p, p) or out.shape[0] < n:
            raise ValueError(f"out must be float32 [>= {n}, {N_PATCH_CHANNELS}, {p}, {p}], got "
                             f"{out.dtype} {list(out.shape)}")
        return out[:n]

    def patches(self, raw: np.ndarray, valid: np.ndarray, out: np.ndarray | None = None
                ) -> tuple[np.ndarray, int]:
        """Model input from raw patches.

        Args:
            raw: ``[n, 3, P, P]`` float32 from :func:`~psirel.features.patches.extract_patches`.
            valid: ``[n, P, P]`` bool.
            out: optional float32 buffer ``[m >= n, 4, P, P]`` to fill (``out[:n]`` returned).

        Returns:
            ``[n, 4, P, P]`` float32 (channels as in the module docstring) and the number of
            points whose patch holds at least one valid pixel with a never-seen LULC code.
        """
        raw = np.asarray(raw)
        valid = np.asarray(valid, dtype=bool)
        if raw.ndim != 4 or raw.shape[1] != len(LAYERS) or raw.shape[2] != raw.shape[3]:
            raise ValueError(f"raw patches must be [n, {len(LAYERS)}, P, P], got {list(raw.shape)}")
        n, _, p, _ = raw.shape
        self._check_patch_px(p)
        if valid.shape != (n, p, p):
            raise ValueError(f"valid must be [{n}, {p}, {p}], got {list(valid.shape)}")
        out = self._check_out(out, n, p)
        if n == 0:
            return out, 0
        self.pixel_channels(raw, valid, out=out)
        return out, self._finish(out, valid)

    def extract(self, stack: RasterStack, x: np.ndarray, y: np.ndarray,
                out: np.ndarray | None = None, block_px: int = BLOCK_PX
                ) -> tuple[np.ndarray, int]:
        """Model input straight from the rasters: equal to ``patches(*extract_patches(...))``
        but faster, since the per-pixel work runs once per window pixel, not per patch pixel.

        Returns ``[n, 4, P, P]`` float32 and the number of points with unknown LULC codes.
        """
        p = self.patch_px
        out = self._check_out(out, len(np.atleast_1d(x)), p)
        _, valid = gather_patches(stack, x, y, self.pixel_channels, N_PATCH_CHANNELS, p, out,
                                  block_px)
        if len(out) == 0:
            return out, 0
        return out, self._finish(out, valid)

    def _check_patch_px(self, p: int) -> None:
        if p != self.patch_px:
            raise ValueError(f"patches are {p} px but the normalizer was fitted on "
                             f"{self.patch_px} px patches")

    # ------------------------------------------------------------------ scalars
    def scalars(self, feats: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Scalar features ``[n, S]`` -> float32 ``[n, S]``: ``asinh((x − centre) / scale)``.

        ``scalar_mean``/``scalar_std`` hold a robust centre and scale (median, 1.4826·MAD); the
        asinh keeps the bulk linear and compresses heavy tails logarithmically, so one outlier
        date does not saturate the network. ``names``, when given, must equal ``scalar_names``
        (guards against a feature set that changed between training and inference). Non-finite
        values map to 0, the training median.
        """
        feats = np.asarray(feats, dtype=np.float64)
        if names is not None and list(names) != self.scalar_names:
            raise ValueError(f"scalar features {list(names)} differ from the model's "
                             f"{self.scalar_names}")
        if feats.ndim != 2 or feats.shape[1] != len(self.scalar_names):
            raise ValueError(f"scalar features must be [n, {len(self.scalar_names)}], got "
                             f"{list(feats.shape)}")
        z = np.arcsinh((feats - np.asarray(self.scalar_mean)) / np.asarray(self.scalar_std))
        return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


# ---------------------------------------------------------------------- fitting
def _robust_centre_scale(feats: np.ndarray, names: list[str] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and 1.4826·MAD over finite values (std where the MAD is 0, 1 where
    both are). PSI features are heavy-tailed (an unwrapping jump is 28 mm against 1–2 mm of
    noise): a mean/std would be dragged by the tail and squash the bulk towards 0.

    Two exceptions, by column name. Columns in :data:`PRESCALED_FEATURES` (quantiles of
    ``r / s``, correlations, pair weights, a flag: dimensionless and of unit order by
    construction) keep centre 0 and scale 1: a per-column fit would blow up the middle quantiles,
    whose spread over points is only their sampling noise (large at 9 dates, small at 300), and
    turn a flag's rare value into an extreme. Columns in :data:`SCALE_FLOORS` (logs of date
    counts and spans, constant within a stack) get at least that scale, so a training set from
    one sensor does not make another sensor's stack an extreme value."""
    n_cols = feats.shape[1]
    centre, scale = np.zeros(n_cols), np.ones(n_cols)
    for j in range(n_cols):
        if (name := names[j] if names is not None else None) in PRESCALED_FEATURES:
            continue
        col = feats[:, j][np.isfinite(feats[:, j])]
        if col.size == 0:
            continue
        centre[j] = np.median(col)
        mad = MAD_TO_STD * np.median(np.abs(col - centre[j]))
        sd = col.std()
        scale[j] = mad if mad > 1e-9 * max(abs(centre[j]), 1.0) else (sd if sd > 0 else 1.0)
        scale[j] = max(scale[j], SCALE_FLOORS.get(name, 0.0))
    return centre, scale


def lulc_codes_in_window(stack: RasterStack, row0: int, col0: int, height: int, width: int,
                         max_px: int = 1 << 22) -> list[int]:
    """Sorted LULC codes present at valid pixels of a window, read in strips of ``max_px``."""
    codes: set[int] = set()
    strip = max(1, max_px // max(width, 1))
    for r in range(row0, row0 + height, strip):
        h = min(strip, row0 + height - r)
        vals, ok = stack.read_window(r, col0, h, width)
        v = vals[_LULC][ok]
        if v.size:
            codes.update(int(c) for c in np.unique(np.trunc(v)))
    return sorted(codes)


def _masked_stats(acc: np.ndarray) -> tuple[float, float]:
    """(mean, std) from accumulated ``[count, sum, sum of squares]``."""
    k, s, ss = acc
    if k == 0:
        return 0.0, 1.0
    mean = s / k
    var = max(ss / k - mean * mean, 0.0)
    return float(mean), float(np.sqrt(var))


def fit_normalizer(stack: RasterStack, x: np.ndarray, y: np.ndarray, scalar_feats: np.ndarray,
                   scalar_names: list[str], sample: int = 2000, seed: int = 0,
                   amp_is_db: bool = False, patch_px: int = PATCH_PX,
                   lulc_source: str = "raster", amp_eps: float = 1e-6) -> Normalizer:
    """Learn normalisation statistics from training points.

    * LULC vocabulary (``lulc_source="raster"``, the default): every code at a valid pixel of
      the raster inside the training points' bounding window plus the patch margin, read in
      strips, so rare classes are not lost to sampling while classes of unrelated parts of a
      larger raster (e.g. a held-out test block) stay unknown. ``"patches"``: only codes in the
      sampled patches.
    * DEM and amplitude statistics: over valid pixels of the patches of a deterministic sample of
      ``min(sample, n)`` points (``numpy.random.default_rng(seed)``, without replacement).
    * Scalar statistics: robust centre and scale (median, 1.4826·MAD) of every column of
      ``scalar_feats [n, S]`` over finite values (see :meth:`Normalizer.scalars`); the
      temporal block's pre-scaled columns keep (0, 1), see :func:`_robust_centre_scale`.
    """
    if lulc_source not in ("raster", "patches"):
        raise ValueError(f"lulc_source must be 'raster' or 'patches', got {lulc_source!r}")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    feats = np.asarray(scalar_feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] != len(x) or feats.shape[1] != len(scalar_names):
        raise ValueError(f"scalar_feats must be [{len(x)}, {len(scalar_names)}], got "
                         f"{list(feats.shape)}")
    dem_path = stack.paths["dem"]
    finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if len(finite) == 0:
        raise PsirelError(f"{dem_path}: no training point with finite coordinates")

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(finite, size=min(int(sample), len(finite)), replace=False))
    c = patch_px // 2
    dem_acc = np.zeros(3)
    amp_acc = np.zeros(3)
    patch_codes: set[int] = set()
    for _, raw, valid in iter_patch_chunks(stack, x[pick], y[pick], chunk_size=512,
                                           patch_px=patch_px, reuse_buffer=True):
        rel = raw[:, _DEM] - raw[:, _DEM, c, c][:, None, None]
        m = valid & np.isfinite(rel)
        r = rel[m].astype(np.float64)
        dem_acc += (r.size, r.sum(), (r * r).sum())
        a = raw[:, _AMP][valid]
        a = a.astype(np.float64) if amp_is_db else amplitude_db(a, amp_eps).astype(np.float64)
        amp_acc += (a.size, a.sum(), (a * a).sum())
        if lulc_source == "patches":
            patch_codes.update(int(v) for v in np.unique(np.trunc(raw[:, _LULC][valid])))
    if amp_acc[0] == 0:
        raise PsirelError(f"{dem_path}: no valid raster pixel (DEM, land cover and amplitude all "
                          f"with data) around {len(pick)} sampled training points")
    _, dem_std = _masked_stats(dem_acc)
    amp_mean, amp_std = _masked_stats(amp_acc)

    if lulc_source == "raster":
        row, col = stack.to_pixel(x[finite], y[finite])
        half = patch_px // 2
        r0 = max(int(np.floor(row.min())) - half, 0)
        c0 = max(int(np.floor(col.min())) - half, 0)
        r1 = min(int(np.floor(row.max())) - half + patch_px, stack.height)
        c1 = min(int(np.floor(col.max())) - half + patch_px, stack.width)
        codes = lulc_codes_in_window(stack, r0, c0, max(r1 - r0, 0), max(c1 - c0, 0)) \
            if r1 > r0 and c1 > c0 else []
    else:
        codes = sorted(patch_codes)

    s_mean, s_std = _robust_centre_scale(feats, list(scalar_names))

    return Normalizer(lulc_codes=codes, dem_rel_std_m=dem_std if dem_std > 0 else 1.0,
                      amp_db_mean=amp_mean, amp_db_std=amp_std if amp_std > 0 else 1.0,
                      scalar_mean=s_mean.tolist(), scalar_std=s_std.tolist(),
                      scalar_names=list(scalar_names), amp_is_db=amp_is_db, amp_eps=amp_eps,
                      patch_px=patch_px)
