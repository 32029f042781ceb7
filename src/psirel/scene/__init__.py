"""Synthetic PSI scenes with expert-like reliability labels (there is no public labelled set).

``generate_scene(out_dir, n_points, seed, ...)`` writes ``points.<gpkg|shp|parquet|csv>``
(layer ``psi``: pid, velocity mm/yr, coherence, height m, reliable, DYYYYMMDD series in mm),
``dem.tif`` (m), ``lulc.tif`` (ESA WorldCover codes; CORINE or NLCD in a random world),
``amplitude.tif`` (linear mean amplitude) and ``scene.json`` (every parameter, class and label
statistics, artefact counts, the world drawn). The same seed gives the same files, whatever the
chunk size. ``world="random"`` draws the world itself from the seed (``worlds.py``: sensor,
revisit, pixel size, terrain type, land-cover product, mix of causes).

How a scene is made, one module per step (``world.build_world`` runs them in order):

``terrain``       DEM by spectral synthesis (``fields``), valleys and ridges; slope, aspect
``geometry``      look geometry (heading, incidence): active and passive layover and shadow
``landcover``     classes tied to the terrain; towns, villages, roads routed between them
``amplitude``     stack-mean amplitude: backscatter by class and slope, strong targets, speckle
``sidelobes``     sidelobes of strong targets: pixels they dominate, ghost points there
``deformation``   subsidence bowls, landslides, slope creep, settling buildings, seasons (LOS)
``atmosphere``    residual atmospheric screens per date (turbulent + stratified, with a drift)
``topography``    the processor's DEM error and the height–velocity coupling: velocity biases
``surface``       soil moisture of fields: the phase bias of distributed scatterers
``artefacts``     phase-unwrapping errors (spatial patches, isolated)
``acquisition``   dates (12-day revisit, 61 dates from 2019-01-06), C-band λ = 55.5 mm
``scatterers``    each point's site and scatterer: height, quality (SCR), outlier, temporary,
                  layover mix, spurious, distributed and ghost scatterers
``psi_points``    placement by density, phase (layover mixing, clutter), unwrapping, series
``estimation``    what a PSI processor computes: line-fit velocity, temporal coherence
``labels``        the expert's rules: noise, temporary, layover/shadow, unwrapping, velocity,
                  topographic bias, spurious scatterers, moisture bias, sidelobes
``worlds``        a world per seed: band, revisit, dates, pass, pixel size, terrain type,
                  land-cover product, climate, the processor's DEM, factors on every cause
``generate``      orchestration and writing (rasters, streamed points, scene.json)
``files``         a scene folder's input files as the CLI takes them (``scene_args``)

The labels are built so that no single statistic of a point's own series decides them (see
``tests/scene/separability.py``): noisy points whose velocity holds are reliable, and several
kinds of unreliable points have smooth series — their velocity follows the terrain, a layover
cell, a field's moisture, another scatterer — which only the rasters around the point and its
neighbours reveal.
"""

from psirel.scene.generate import generate_scene
from psirel.scene.landcover import CLASS_CODES, CLASS_NAMES

__all__ = ["CLASS_CODES", "CLASS_NAMES", "generate_scene"]
