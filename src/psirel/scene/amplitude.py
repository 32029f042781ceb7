"""Mean SAR amplitude over the stack: backscatter by land cover and terrain, with speckle.

Each pixel's mean backscatter σ0 (linear) comes from its land cover — bright on buildings (double
bounce from walls and ground, with strong pixel-to-pixel texture and a few very strong point
targets whose sidelobes ``sidelobes.py`` adds), dark on calm water — scaled by
the terrain: a slope facing the sensor packs more ground into a range cell and is brighter
(``sin θ / sin θ_local``), layover sums the returns of the slopes imaged in the same cell (about
a third brighter, active or passive), shadow returns only the noise floor. Each date's amplitude
is speckled (Rayleigh: the square root of an exponentially distributed intensity); the stack
mean of ``n_dates`` such amplitudes is drawn directly from a gamma distribution with the same
mean and variance (Rayleigh mean √(πσ0)/2, variance (4 − π)σ0/4, both divided by ``n_dates``
for the variance of the mean).
"""

from __future__ import annotations

import numpy as np

from psirel.scene.fields import power_law_field
from psirel.scene.geometry import GeometryMasks
from psirel.scene.landcover import BARE, BUILT_UP, CROPLAND, FOREST, GRASSLAND, WATER

# C-band VV mean backscatter σ0 (linear) by class
SIGMA0: dict[int, float] = {
    FOREST: 0.075,     # ≈ -11 dB
    GRASSLAND: 0.035,  # ≈ -14.5 dB
    CROPLAND: 0.045,   # ≈ -13.5 dB
    BUILT_UP: 0.35,    # ≈ -4.5 dB (mean; single pixels far brighter)
    BARE: 0.06,        # ≈ -12 dB
    WATER: 0.004,      # ≈ -24 dB
}
NOISE_FLOOR = 0.005  # σ0 of the noise equivalent (≈ -23 dB): what shadow returns
STRONG_TARGET_RATE = 0.007  # share of buildings' pixels holding a very strong point target


def backscatter(rng: np.random.Generator, lulc: np.ndarray, road: np.ndarray,
                geometry: GeometryMasks, incidence_deg: float, pixel_m: float) -> np.ndarray:
    """Noise-free mean σ0 (linear) per pixel from land cover and look geometry."""
    sigma0 = np.zeros(lulc.shape)
    for code, s in SIGMA0.items():
        sigma0[lulc == code] = s
    # texture: built-up pixels are dominated by a few strong scatterers (lognormal, ~4 dB spread);
    # natural surfaces vary smoothly (moisture, biomass, ~1 dB)
    smooth = power_law_field(rng, lulc.shape, pixel_m, beta=3.0, corner_m=400.0, coarse=2)
    built = lulc == BUILT_UP
    sigma0 *= np.exp(0.25 * smooth)
    sigma0[built] *= rng.lognormal(0.0, 0.9, int(built.sum()))
    # a few very strong point targets (dihedrals of walls and streets, metal roofs, pylons):
    # 10–20 dB above the built-up mean, with sidelobes (``sidelobes.py``)
    strong = built & ~road & (rng.random(lulc.shape) < STRONG_TARGET_RATE)
    sigma0[strong] *= 10.0 ** rng.uniform(1.0, 2.0, int(strong.sum()))
    sigma0[road] *= 0.4  # a road is a smooth surface; its scatterers are signs, rails, edges
    # terrain: illuminated area per range cell
    sin_t = np.sin(np.radians(incidence_deg))
    local_inc = np.radians(incidence_deg - geometry.range_slope_deg)
    area = sin_t / np.maximum(np.abs(np.sin(local_inc)), 0.15)
    sigma0 *= np.clip(area, 0.3, 5.0)
    sigma0[geometry.layover] *= 1.3  # the returns of the slopes imaged in the same cell add
    sigma0[geometry.shadow] = NOISE_FLOOR
    return np.maximum(sigma0, NOISE_FLOOR)


def mean_amplitude(rng: np.random.Generator, sigma0: np.ndarray, n_dates: int) -> np.ndarray:
    """Stack-mean amplitude (linear, float32) of ``n_dates`` speckled acquisitions of ``sigma0``."""
    shape_k = np.pi / (4.0 - np.pi) * n_dates  # gamma shape matching mean² / variance
    mean = np.sqrt(np.pi * sigma0) / 2.0
    return rng.gamma(shape_k, mean / shape_k).astype(np.float32)
