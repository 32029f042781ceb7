"""Worlds drawn per seed (``worlds.py``), land-cover product codes, and the default world kept."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pyogrio.raw
import pytest
import rasterio

from psirel.errors import PsirelError
from psirel.scene.generate import generate_scene, lulc_raster
from psirel.scene.landcover import (
    BARE,
    BUILT_UP,
    CLASS_CODES,
    CROPLAND,
    FOREST,
    GRASSLAND,
    PRODUCT_CODES,
    PRODUCT_DTYPES,
    PRODUCT_MIX,
    PRODUCTS,
    ROAD_CODES,
    WATER,
    encode_lulc,
)
from psirel.scene.params import EXTENSION_DEFAULTS, MIN_SIZE_PX, SceneParams, default_size_px
from psirel.scene.rng import child_rng
from psirel.scene.world import build_world
from psirel.scene.worlds import BANDS, CAUSES, draw, draw_world

N_SMALL = 1_500
SEEDS = tuple(range(12))
DRAW_SEEDS = tuple(range(60))


@pytest.fixture(scope="module")
def random_scenes(tmp_path_factory) -> dict[int, tuple]:
    """Seeds 0–11 in random worlds, 1,500 points each: (folder, scene.json, world)."""
    out = {}
    for seed in SEEDS:
        d = tmp_path_factory.mktemp(f"world_{seed}")
        scene = generate_scene(d, n_points=N_SMALL, seed=seed, world="random")
        out[seed] = (d, scene, build_world(draw_world(seed, N_SMALL)))
    return out


def test_draw_is_deterministic():
    a, b = draw(7, N_SMALL), draw(7, N_SMALL)
    assert a.to_dict() == b.to_dict() and a.params == b.params
    assert draw_world(7, N_SMALL) == a.params
    assert draw(8, N_SMALL).to_dict() != a.to_dict()
    json.dumps(a.to_dict())  # JSON-ready


def test_draws_span_their_ranges_and_differ_between_seeds():
    draws = [draw(s, N_SMALL) for s in DRAW_SEEDS]
    assert {d.band for d in draws} == set(BANDS)
    assert {d.lulc_product for d in draws} == set(PRODUCTS)
    assert {d.terrain for d in draws} == {"flat_coastal", "hills", "alpine"}
    assert {d.pass_direction for d in draws} == {"ascending", "descending"}
    assert len({d.pixel_m for d in draws}) > 40 and len({d.revisit_days for d in draws}) > 5
    for d in draws:
        p = d.params
        assert p.wavelength_mm == BANDS[d.band][0] == d.wavelength_mm
        assert 6 <= p.revisit_days <= 35 and 20 <= p.n_dates <= 150
        assert 0.95 <= (p.n_dates - 1) * p.revisit_days / 365.25 <= 6.1
        if d.band == "L":
            assert p.n_dates >= 60
        if d.pass_direction == "ascending":
            assert -15.0 <= p.heading_deg <= -10.0
        else:
            assert -170.0 <= p.heading_deg <= -165.0
        assert 25.0 <= p.incidence_deg <= 45.0
        assert 5.0 <= p.pixel_m <= 30.0
        assert p.size_px == default_size_px(N_SMALL, p.pixel_m) >= MIN_SIZE_PX
        assert set(d.causes) == set(CAUSES) and all(0.1 < f < 5.0 for f in d.causes.values())
        assert p.lulc_product == d.lulc_product and p.crs.startswith("EPSG:326")
        relief = {"flat_coastal": (0, 40), "hills": (100, 250), "alpine": (300, 500)}[d.terrain]
        assert relief[0] <= p.relief_m <= relief[1]


def test_min_size_still_holds_at_30_m():
    # 256 px of 30 m: 7.7 km, the points' area at ≈ 2,500 points/km² for up to ~60,000 points
    assert default_size_px(N_SMALL, 30.0) == default_size_px(20_000, 30.0) == MIN_SIZE_PX
    assert default_size_px(200_000, 30.0) > MIN_SIZE_PX


def test_every_draw_generates_a_sane_scene(random_scenes):
    fractions = []
    for seed, (d, scene, world) in random_scenes.items():
        w = scene["world"]
        assert w["kind"] == "random" and w["seed"] == seed and w["overrides"] == []
        assert w == json.loads(json.dumps(draw(seed, N_SMALL).to_dict()
                                          | {"overrides": []}))
        assert scene["n_points"] == N_SMALL and scene["pixel_m"] == w["pixel_m"]
        assert scene["acquisition"]["wavelength_mm"] == w["wavelength_mm"]
        assert scene["acquisition"]["n_dates"] == w["n_dates"]
        rate = scene["label_rates"]["unreliable"]
        assert 0.05 <= rate <= 0.5, (seed, w["name"], rate)
        fractions.append(rate)
        with rasterio.open(d / "lulc.tif") as src:
            assert src.dtypes[0] == PRODUCT_DTYPES[w["lulc_product"]]
            assert src.nodata == 0 and src.res == (w["pixel_m"], w["pixel_m"])
            assert src.crs.to_string() == w["crs"]
            codes = src.read(1)
        np.testing.assert_array_equal(codes, lulc_raster(world))
    assert 0.12 < float(np.median(fractions)) < 0.32


def test_written_codes_are_the_products_codes_of_the_internal_classes(random_scenes):
    seen = set()
    for d, scene, world in random_scenes.values():
        product = scene["world"]["lulc_product"]
        seen.add(product)
        with rasterio.open(d / "lulc.tif") as src:
            codes = src.read(1)
        internal = world.cover.lulc
        for cls in CLASS_CODES:
            on = internal == cls
            assert set(np.unique(codes[on]).tolist()) <= set(PRODUCT_CODES[product][cls])
        assert not np.any(codes == 0)
        if product != "worldcover":
            listed = {c["code"]: c["product_codes"] for c in scene["land_cover"]["classes"]}
            assert listed == {k: list(v) for k, v in PRODUCT_CODES[product].items()}
    assert seen == set(PRODUCTS)


def test_product_tables_hold_the_real_code_lists():
    corine, nlcd = PRODUCT_CODES["corine"], PRODUCT_CODES["nlcd"]
    assert set(corine[BUILT_UP]) == {111, 112, 121, 122}
    assert set(corine[WATER]) == {511, 512, 523} and set(corine[FOREST]) == {311, 312, 313}
    assert set(nlcd[BUILT_UP]) == {21, 22, 23, 24} and nlcd[CROPLAND] == (82,)
    assert nlcd[BARE] == (31,) and set(nlcd[FOREST]) == {41, 42, 43}
    assert PRODUCT_CODES["worldcover"] == {c: (c,) for c in CLASS_CODES}
    for product, table in PRODUCT_CODES.items():
        assert set(table) == set(CLASS_CODES)
        every = [c for codes in table.values() for c in codes]
        assert len(every) == len(set(every)), product  # a code names one internal class
        assert max(every) <= np.iinfo(PRODUCT_DTYPES[product]).max and 0 not in every


def test_encode_draws_blobs_in_their_shares_and_roads_rivers_sea():
    shape = (200, 300)
    lulc = np.full(shape, GRASSLAND, np.uint8)
    lulc[:, 100:200] = CROPLAND
    lulc[:, 200:] = BUILT_UP
    lulc[:20, :] = WATER  # a sea along the northern edge (10 % of the scene)
    lulc[100, :100] = WATER  # a river
    road = np.zeros(shape, bool)
    road[150, 200:] = True
    river = np.zeros(shape, bool)
    river[100, :100] = True
    out = encode_lulc(child_rng(0, "lulc_codes"), lulc, "corine", 10.0, road, river)
    assert out.dtype == np.uint16
    assert np.all(out[:20] == 523) and np.all(out[100, :100] == 511)
    assert np.all(out[150, 200:] == ROAD_CODES["corine"])
    for cls, mix in PRODUCT_MIX["corine"].items():
        on = (lulc == cls) & ~road & ~river
        if cls == WATER or not on.any():
            continue
        counts = {c: np.mean(out[on] == c) for c, _ in mix}
        assert set(np.unique(out[on]).tolist()) == set(counts), cls  # every code is drawn
        # blobs of ~300 m: shares hold to within a few tens of per cent on 2–3 km²
        for code, share in mix:
            assert counts[code] == pytest.approx(share, abs=0.25), (cls, code)
    same = encode_lulc(child_rng(0, "lulc_codes"), lulc, "corine", 10.0, road, river)
    np.testing.assert_array_equal(out, same)
    wc = encode_lulc(child_rng(0, "lulc_codes"), lulc, "worldcover", 10.0, road, river)
    assert wc.dtype == np.uint8
    np.testing.assert_array_equal(wc, lulc)
    with pytest.raises(ValueError, match="product"):
        encode_lulc(child_rng(0, "x"), lulc, "modis", 10.0)


def test_random_world_same_seed_same_bytes(random_scenes, tmp_path):
    d, _, _ = random_scenes[3]
    generate_scene(tmp_path, n_points=N_SMALL, seed=3, world="random")
    for name in ("scene.json", "dem.tif", "lulc.tif", "amplitude.tif"):
        assert (d / name).read_bytes() == (tmp_path / name).read_bytes(), name
    a = pyogrio.raw.read(d / "points.gpkg", layer="psi")[3]
    b = pyogrio.raw.read(tmp_path / "points.gpkg", layer="psi")[3]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_caller_pixel_size_overrides_the_draw(tmp_path):
    drawn = draw(5, N_SMALL)
    scene = generate_scene(tmp_path, n_points=N_SMALL, seed=5, world="random", pixel_m=30.0,
                           fmt="csv")
    assert scene["pixel_m"] == 30.0 and scene["size_px"] == MIN_SIZE_PX
    assert scene["world"]["overrides"] == ["pixel_m"] and scene["world"]["pixel_m"] == 30.0
    assert scene["acquisition"]["revisit_days"] == drawn.revisit_days  # the rest as drawn
    with pytest.raises(PsirelError, match="world"):
        generate_scene(tmp_path / "x", n_points=10, world="mars")


# Recorded from the generator before worlds existed (seed 7, 1,500 points, 96 px): the default
# world must keep these bytes. scene.json is compared as a file, rasters and points as arrays
# (GeoTIFF and GeoPackage files also hold library versions and timestamps).
DEFAULT_SCENE_JSON = "64531279f4e1919eb3aa955c2c8c30a013c031aedcb88640b44284ba057df9ac"
DEFAULT_RASTERS = {
    "dem.tif": "465c9722227d7b282f9c05716a80a8558888b859563d8576c7c0383edbb5da5a",
    "lulc.tif": "f7278d3e193e7181464dbd6e24349445f66f4f850cf16333d46a72da83b07a94",
    "amplitude.tif": "49b7f2084c843ad9c48667b7c6f6e0e542f2e7a0695ab9814cf0244c74673a58"}
# The points: the integer fields (pid, reliable) exactly; the float fields (velocity, coherence,
# height, the series) through one weighted sum, so that a last-bit difference of a maths library
# between machines does not fail the test while any real change of the generator does.
DEFAULT_POINT_INTS = "43465afb63967255c372dee3eefb0e957da1aea4e5d841068d18f896cfb9a243"
DEFAULT_POINT_FLOATS = -240829.29800336057


def test_default_world_is_unchanged(tmp_path):
    scene = generate_scene(tmp_path, n_points=N_SMALL, seed=7, size_px=96, world="default")
    assert "world" not in scene
    assert hashlib.sha256((tmp_path / "scene.json").read_bytes()).hexdigest() == DEFAULT_SCENE_JSON
    for name, digest in DEFAULT_RASTERS.items():
        with rasterio.open(tmp_path / name) as src:
            data = src.read(1)
        assert data.dtype == (np.uint8 if name == "lulc.tif" else np.float32)
        assert hashlib.sha256(data.tobytes()).hexdigest() == digest, name
    fields = pyogrio.raw.read(tmp_path / "points.gpkg", layer="psi")[3]
    ints, total = hashlib.sha256(), 0.0
    weights = np.random.default_rng(0).random(len(fields[0]))
    for values in fields:
        if values.dtype.kind in "iu":
            ints.update(np.ascontiguousarray(values).tobytes())
        else:
            total += float(np.dot(np.asarray(values, np.float64), weights))
    assert ints.hexdigest() == DEFAULT_POINT_INTS
    assert total == pytest.approx(DEFAULT_POINT_FLOATS, rel=1e-6)
    assert not set(EXTENSION_DEFAULTS) & set(SceneParams().to_dict())
    moved = dataclasses.replace(SceneParams(), lulc_product="nlcd").to_dict()
    assert moved["lulc_product"] == "nlcd"
