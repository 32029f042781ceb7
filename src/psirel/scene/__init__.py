"""Synthetic PSI scenes with expert-like reliability labels (there is no public labelled set).

``generate_scene(out_dir, n_points, seed, ...)`` writes ``points.<gpkg|shp|parquet|csv>``
(layer ``psi``: pid, velocity mm/yr, coherence, height m, reliable, DYYYYMMDD series in mm),
``dem.tif`` (m), ``lulc.tif`` (ESA WorldCover codes), ``amplitude.tif`` (linear mean amplitude)
and ``scene.json`` (every parameter, class and label statistics, artefact counts). The same seed
gives the same files, whatever the chunk size.

How a scene is made, one module per step (``world.build_world`` runs them in order):

``terrain``       DEM by spectral synthesis (``fields``), valleys and ridges; slope, aspect
``geometry``      look geometry (heading, incidence): layover, shadow, local incidence
``landcover``     classes tied to the terrain; towns, villages, roads routed between them
``amplitude``     stack-mean amplitude: backscatter by class and slope, gamma speckle
``deformation``   subsidence bowls, landslides, seasonal ground and thermal motion (LOS)
``atmosphere``    residual atmospheric screens per date (turbulent + stratified)
``artefacts``     phase-unwrapping errors (spatial patches, isolated)
``acquisition``   dates (12-day revisit, 61 dates from 2019-01-06), C-band λ = 55.5 mm
``psi_points``    placement by density, scatterer quality, phase, unwrapping, series
``estimation``    what a PSI processor computes: line-fit velocity, temporal coherence
``labels``        the expert's rules: noise, temporary, layover/shadow, unwrapping, velocity
``generate``      orchestration and writing (rasters, streamed points, scene.json)
"""

from psirel.scene.generate import generate_scene
from psirel.scene.landcover import CLASS_CODES, CLASS_NAMES

__all__ = ["CLASS_CODES", "CLASS_NAMES", "generate_scene"]
