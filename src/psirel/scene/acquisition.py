"""Acquisition: dates of the stack, wavelength and look geometry of a Sentinel-1-like sensor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from psirel.scene.geometry import LookGeometry

DAYS_PER_YEAR = 365.25
C_BAND_WAVELENGTH_MM = 55.5


@dataclass(frozen=True)
class Acquisition:
    """A stack of ``n_dates`` acquisitions every ``revisit_days`` days from ``start``.

    ``wavelength_mm``: radar wavelength (mm); a LOS displacement ``d`` (mm) changes the
    interferometric phase by ``4π d / λ`` (rad), so one phase cycle is ``λ/2`` of motion.
    ``look``: heading and incidence of the (right-looking) sensor.
    """

    start: dt.date = dt.date(2019, 1, 6)
    revisit_days: int = 12
    n_dates: int = 61
    wavelength_mm: float = C_BAND_WAVELENGTH_MM
    look: LookGeometry = LookGeometry()

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=self.revisit_days * i) for i in range(self.n_dates)]

    @property
    def days(self) -> np.ndarray:
        """Days since the first acquisition (float64, ``n_dates``)."""
        return np.arange(self.n_dates, dtype=np.float64) * self.revisit_days

    @property
    def years(self) -> np.ndarray:
        """Years since the first acquisition (float64, ``n_dates``)."""
        return self.days / DAYS_PER_YEAR

    @property
    def day_of_year(self) -> np.ndarray:
        """Fractional position of each date in its year, 0 … 1 (float64, ``n_dates``)."""
        return np.array([(d.timetuple().tm_yday - 1) / DAYS_PER_YEAR for d in self.dates])

    @property
    def column_names(self) -> list[str]:
        """Time-series column names, ``DYYYYMMDD``."""
        return [f"D{d:%Y%m%d}" for d in self.dates]

    @property
    def rad_per_mm(self) -> float:
        """Phase change (rad) per mm of LOS displacement: ``4π / λ``."""
        return 4.0 * np.pi / self.wavelength_mm

    @property
    def ambiguity_mm(self) -> float:
        """LOS displacement of one phase cycle, ``λ/2`` (mm): the size of an unwrapping error."""
        return self.wavelength_mm / 2.0
