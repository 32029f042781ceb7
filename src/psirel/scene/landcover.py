"""Land cover tied to the terrain: internal classes, written with a land-cover product's codes.

Internal classes (their values are ESA WorldCover 2021 codes): 10 tree cover (forest),
30 grassland, 40 cropland, 50 built-up, 60 bare / sparse vegetation (bare rock), 80 permanent
water bodies; 0 is nodata. Roads and bridges are built-up, as land-cover maps have them; a
separate road mask is kept for the point simulation (roads carry fewer, noisier scatterers
than buildings). Everything the generator simulates (density, SCR, amplitude, labels) uses the
internal classes; only ``lulc.tif`` is written with a product's codes (``encode_lulc``):

* ``worldcover`` (ESA WorldCover, uint8): one code per class, the internal value itself;
* ``corine`` (CORINE Land Cover level 3, uint16): several codes per class, drawn per blob of a
  few hundred metres (built-up: 111/112/121, roads 122; cropland: 211/221/222/242/243; ...),
  rivers 511, lakes 512, a sea (the large water body on the scene edge of a coastal scene) 523;
* ``nlcd`` (USA NLCD, uint8): developed 22/23/24 per blob, roads 21, forest 41/42/43,
  grassland 71/52/81, cropland 82, barren 31, water 11.

Codes a product has for what the generator never makes (snow and ice, wetlands, mangroves) are
not written: the generator has no such internal class.

How classes follow the terrain: every natural class gets a suitability score from slope and
elevation plus a smooth random field (patchiness), and the best score wins — cropland on gentle
low ground, forest on mid slopes, grassland as the default, bare rock on steep and high ground.
Then water (rivers on valley floors, lakes in the lowest flat hollows), towns and villages on
gentle low ground, and roads routed between settlements along the cheapest (least steep) path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree
from scipy.special import ndtr

from psirel.scene.fields import power_law_field
from psirel.scene.terrain import Terrain

FOREST, GRASSLAND, CROPLAND, BUILT_UP, BARE, WATER = 10, 30, 40, 50, 60, 80
NODATA = 0
CLASS_NAMES: dict[int, str] = {
    FOREST: "tree cover",
    GRASSLAND: "grassland",
    CROPLAND: "cropland",
    BUILT_UP: "built-up",
    BARE: "bare / sparse vegetation",
    WATER: "permanent water bodies",
}
CLASS_CODES: tuple[int, ...] = tuple(CLASS_NAMES)

PRODUCTS: dict[str, str] = {"worldcover": "ESA WorldCover", "corine": "CORINE Land Cover",
                            "nlcd": "NLCD"}
PRODUCT_DTYPES: dict[str, str] = {"worldcover": "uint8", "corine": "uint16", "nlcd": "uint8"}
# per product and internal class: (code, share) of the blobs the class is written with
PRODUCT_MIX: dict[str, dict[int, tuple[tuple[int, float], ...]]] = {
    "worldcover": {c: ((c, 1.0),) for c in CLASS_CODES},
    "corine": {
        BUILT_UP: ((112, 0.6), (111, 0.2), (121, 0.2)),
        BARE: ((332, 0.55), (333, 0.45)),
        GRASSLAND: ((231, 0.4), (321, 0.35), (324, 0.15), (322, 0.1)),
        CROPLAND: ((211, 0.55), (242, 0.25), (243, 0.1), (221, 0.05), (222, 0.05)),
        FOREST: ((311, 0.4), (312, 0.35), (313, 0.25)),
        WATER: ((512, 1.0),)},
    "nlcd": {
        BUILT_UP: ((22, 0.45), (23, 0.35), (24, 0.2)),
        BARE: ((31, 1.0),),
        GRASSLAND: ((71, 0.5), (52, 0.25), (81, 0.25)),
        CROPLAND: ((82, 1.0),),
        FOREST: ((41, 0.45), (42, 0.35), (43, 0.2)),
        WATER: ((11, 1.0),)},
}
ROAD_CODES: dict[str, int] = {"worldcover": BUILT_UP, "corine": 122, "nlcd": 21}
RIVER_CODES: dict[str, int] = {"worldcover": WATER, "corine": 511, "nlcd": 11}
SEA_CODES: dict[str, int] = {"worldcover": WATER, "corine": 523, "nlcd": 11}
SEA_MIN_SHARE = 0.02  # a water body on the scene edge covering this share of it is a sea
# product → internal class → every code the class may be written with (sorted)
PRODUCT_CODES: dict[str, dict[int, tuple[int, ...]]] = {
    product: {cls: tuple(sorted({c for c, _ in mix}
                                | ({ROAD_CODES[product]} if cls == BUILT_UP else set())
                                | ({RIVER_CODES[product], SEA_CODES[product]}
                                   if cls == WATER else set())))
              for cls, mix in table.items()}
    for product, table in PRODUCT_MIX.items()}


@dataclass
class LandCover:
    """Land cover on the scene grid.

    lulc: class codes (uint8); road: road and bridge pixels (bool, also coded built-up);
    building_height_m: typical building height on built-up pixels (m; 0 elsewhere);
    settlements: one record per town or village (row, col in px; radius_m; kind).
    """

    lulc: np.ndarray
    road: np.ndarray
    building_height_m: np.ndarray
    settlements: list[dict] = field(default_factory=list)


def elevation_rank(dem_m: np.ndarray) -> np.ndarray:
    """Rank of each pixel's elevation in the scene, 0 (lowest) … 1 (highest)."""
    flat = dem_m.ravel()
    rank = np.empty(flat.size)
    rank[np.argsort(flat, kind="stable")] = np.linspace(0.0, 1.0, flat.size)
    return rank.reshape(dem_m.shape)


def make_landcover(rng: np.random.Generator, terrain: Terrain, pixel_m: float,
                   lake_share: float = 0.03, bare_rank: float = 0.85) -> LandCover:
    """Classify every pixel of ``terrain`` (``pixel_m`` m pixels) into an internal class.
    ``lake_share``: lakes may fill the flat parts of that lowest share of the scene;
    ``bare_rank``: bare rock takes over above that elevation rank (0 … 1)."""
    slope = ndimage.gaussian_filter(terrain.slope_deg, sigma=max(1.0, 30.0 / pixel_m))
    slope = slope.astype(np.float32)
    rank = elevation_rank(terrain.dem_m).astype(np.float32)
    lulc = _natural_classes(rng, slope, rank, pixel_m, bare_rank)
    water = terrain.river | _lakes(slope, rank, pixel_m, lake_share)
    lulc[water] = WATER
    settlements = _place_settlements(rng, slope, rank, water, pixel_m)
    built, building_h = _settlement_masks(rng, settlements, slope, water, pixel_m)
    road = _roads(settlements, slope, water, pixel_m)
    lulc[built | road] = BUILT_UP
    building_h[road & ~built] = 0.0
    return LandCover(lulc, road, building_h.astype(np.float32), settlements)


def _natural_classes(rng: np.random.Generator, slope: np.ndarray, rank: np.ndarray,
                     pixel_m: float, bare_rank: float = 0.85) -> np.ndarray:
    """Cropland, grassland, forest or bare rock per pixel: the best suitability score (from the
    smoothed slope in °, the elevation rank and a patchiness field with ~700 m patches; rock
    wins on steep ground and above ``bare_rank``), then a majority vote over ~50 m so that
    classes form patches, not speckle."""
    shape = slope.shape

    def patches() -> np.ndarray:
        return power_law_field(rng, shape, pixel_m, beta=3.0, corner_m=700.0,
                               coarse=max(1, int(round(20.0 / pixel_m))))

    def score(k: int) -> np.ndarray:
        if k == 0:  # cropland: gentle, low ground
            return 1.4 - slope / 6.0 - 3.0 * np.maximum(rank - 0.5, 0.0) + 0.7 * patches()
        if k == 1:  # grassland: the default, a little more on high ground
            return 0.5 + 0.3 * rank + 0.5 * patches()
        if k == 2:  # forest: mid slopes around 22°
            return 0.8 - 0.5 * ((slope - 22.0) / 10.0) ** 2 + 0.7 * patches()
        return (-0.8 + np.maximum(slope - 28.0, 0.0) / 6.0  # bare rock: steep or high
                + 6.0 * np.maximum(rank - bare_rank, 0.0) + 0.35 * patches())

    classes = np.array([CROPLAND, GRASSLAND, FOREST, BARE], np.uint8)
    win = _running_argmax(score(k) for k in range(len(classes)))
    size = max(3, int(round(50.0 / pixel_m)) | 1)
    votes = (ndimage.uniform_filter((win == k).astype(np.float32), size=size)
             for k in range(len(classes)))
    return classes[_running_argmax(votes)]


def _running_argmax(layers) -> np.ndarray:
    """Index (uint8) of the largest of the 2-D ``layers`` per pixel, the first on ties; one
    layer in memory at a time."""
    best = win = None
    for k, layer in enumerate(layers):
        if best is None:
            best, win = layer.copy(), np.zeros(layer.shape, np.uint8)
            continue
        better = layer > best
        win[better], best[better] = k, layer[better]
    return win


def _lakes(slope: np.ndarray, rank: np.ndarray, pixel_m: float, share: float = 0.03
           ) -> np.ndarray:
    """Lakes: the flattest (< 3°) of the lowest ``share`` of the scene, at least 0.5 ha each."""
    lake = (rank < share) & (slope < 3.0)
    lake = ndimage.binary_opening(lake, iterations=2)
    labels, n = ndimage.label(lake)
    if n == 0:
        return lake
    sizes = np.bincount(labels.ravel())
    keep = sizes * pixel_m**2 >= 5000.0
    keep[0] = False
    return keep[labels]


def _place_settlements(rng: np.random.Generator, slope: np.ndarray, rank: np.ndarray,
                       water: np.ndarray, pixel_m: float) -> list[dict]:
    """Towns (about one per 4 km², at least two) on gentle low ground at least 1.2 km apart,
    and twice as many villages (0.5 km apart from any settlement) on gentler-than-15° ground."""
    ny, nx = slope.shape
    area_km2 = ny * nx * pixel_m**2 / 1e6
    margin = int(min(ny, nx) * 0.08)
    inner = np.zeros_like(water)
    inner[margin:ny - margin, margin:nx - margin] = True
    out: list[dict] = []
    for kind, count, ok, min_gap_m, radius in (
        ("town", max(2, int(round(area_km2 / 4.0))), (slope < 7) & (rank < 0.6), 1200.0,
         lambda: float(np.clip(rng.lognormal(np.log(330.0), 0.35), 180.0, 900.0))),
        ("village", max(2, int(round(area_km2 / 2.0))), (slope < 12) & (rank < 0.85), 500.0,
         lambda: float(rng.uniform(70.0, 170.0))),
    ):
        cand = np.flatnonzero(ok & ~water & inner)
        if cand.size == 0:  # no gentle ground: take the gentlest tenth of the scene
            gentle = slope <= np.quantile(slope[inner & ~water], 0.1)
            cand = np.flatnonzero(gentle & ~water & inner)
        tries = rng.choice(cand, size=min(cand.size, 40 * count), replace=False)
        placed = np.array([[s["row"], s["col"]] for s in out], float).reshape(-1, 2)
        n_kind = 0
        for idx in tries:  # loop over candidate sites (tens), not over points
            rc = np.array(divmod(int(idx), nx), float)
            if placed.size and np.min(np.hypot(*(placed - rc).T)) * pixel_m < min_gap_m:
                continue
            out.append({"kind": kind, "row": int(rc[0]), "col": int(rc[1]), "radius_m": radius()})
            placed = np.vstack([placed, rc])
            n_kind += 1
            if n_kind == count:
                break
    return out


def _settlement_masks(rng: np.random.Generator, settlements: list[dict], slope: np.ndarray,
                      water: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Built-up pixels of every settlement — an irregular ellipse around its centre, limited to
    slopes under 15° — and the typical building height there (m; taller in town centres)."""
    shape = slope.shape
    built = np.zeros(shape, bool)
    height = np.zeros(shape, np.float64)
    edge = power_law_field(rng, shape, pixel_m, beta=3.0, corner_m=300.0, coarse=2)
    for s in settlements:
        r_px = s["radius_m"] / pixel_m
        half = int(np.ceil(1.6 * r_px)) + 1
        r0, r1 = max(0, s["row"] - half), min(shape[0], s["row"] + half + 1)
        c0, c1 = max(0, s["col"] - half), min(shape[1], s["col"] + half + 1)
        yy, xx = np.mgrid[r0:r1, c0:c1]
        theta, ratio = rng.uniform(0, np.pi), rng.uniform(0.6, 1.0)
        u = (xx - s["col"]) * np.cos(theta) + (yy - s["row"]) * np.sin(theta)
        v = -(xx - s["col"]) * np.sin(theta) + (yy - s["row"]) * np.cos(theta)
        d = np.hypot(u, v / ratio) / r_px
        inside = (d < 1.0 + 0.3 * edge[r0:r1, c0:c1]) & (slope[r0:r1, c0:c1] < 15.0)
        inside &= ~water[r0:r1, c0:c1]
        top = rng.uniform(10.0, 28.0) if s["kind"] == "town" else rng.uniform(5.0, 9.0)
        h = np.clip(top * (1.2 - 0.8 * d), 4.0, None)
        built[r0:r1, c0:c1] |= inside
        win = height[r0:r1, c0:c1]
        win[inside] = np.maximum(win[inside], h[inside])
        s["building_height_m"] = float(top)
    return built, height


def _roads(settlements: list[dict], slope: np.ndarray, water: np.ndarray, pixel_m: float
           ) -> np.ndarray:
    """Roads: a minimum spanning tree over the towns plus a road from each village to its
    nearest town, each routed along the cheapest path on a ~100 m grid where steep ground is
    expensive and water (a bridge) more so. Town roads are 2 px wide, village roads 1 px."""
    shape = slope.shape
    road = np.zeros(shape, bool)
    towns = [s for s in settlements if s["kind"] == "town"]
    if len(towns) < 1:
        return road
    c = max(1, int(round(100.0 / pixel_m)))
    gy, gx = -(-shape[0] // c), -(-shape[1] // c)
    pad = ((0, gy * c - shape[0]), (0, gx * c - shape[1]))
    slope_c = np.pad(slope, pad, mode="edge").reshape(gy, c, gx, c).mean(axis=(1, 3))
    water_c = np.pad(water, pad, mode="edge").reshape(gy, c, gx, c).mean(axis=(1, 3))
    cost = (1.0 + (slope_c / 8.0) ** 2 + 30.0 * water_c).ravel()
    graph = _grid_graph(gy, gx, cost)

    def node(s: dict) -> int:
        return min(s["row"] // c, gy - 1) * gx + min(s["col"] // c, gx - 1)

    town_nodes = np.array([node(s) for s in towns])
    dist, pred = dijkstra(graph, indices=town_nodes, return_predecessors=True)
    links: list[tuple[int, int, int]] = []  # (source town index, target node, width px)
    if len(towns) > 1:
        mst = minimum_spanning_tree(dist[:, town_nodes]).tocoo()
        links += [(int(i), int(town_nodes[j]), 2) for i, j in zip(mst.row, mst.col, strict=True)]
    for s in settlements:
        if s["kind"] == "village":
            n = node(s)
            links.append((int(np.argmin(dist[:, n])), n, 1))
    for src, target, width in links:
        nodes = [target]
        while nodes[-1] != town_nodes[src] and pred[src, nodes[-1]] >= 0:  # walk back one path
            nodes.append(int(pred[src, nodes[-1]]))
        rc = (np.array(np.divmod(np.array(nodes), gx), float).T + 0.5) * c - 0.5
        if len(rc) > 2:  # soften the grid's staircase
            rc = ndimage.gaussian_filter1d(rc, 1.0, axis=0, mode="nearest")
        _draw_polyline(road, rc, width)
    return road


def _grid_graph(gy: int, gx: int, cost: np.ndarray):
    """Sparse 8-connected grid graph; edge weight = length (cells) × mean cost of its ends."""
    idx = np.arange(gy * gx).reshape(gy, gx)
    rows, cols, w = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = idx[max(0, -dy):gy - max(0, dy), max(0, -dx):gx - max(0, dx)]
        b = idx[max(0, dy):gy - max(0, -dy), max(0, dx):gx - max(0, -dx)]
        a, b = a.ravel(), b.ravel()
        length = np.hypot(dy, dx)
        rows += [a, b]
        cols += [b, a]
        w += [length * 0.5 * (cost[a] + cost[b])] * 2
    n = gy * gx
    return coo_matrix((np.concatenate(w), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, n)).tocsr()


def _draw_polyline(mask: np.ndarray, rc: np.ndarray, width_px: int) -> None:
    """Burn a polyline of (row, col) px vertices into ``mask``, ``width_px`` pixels wide."""
    if len(rc) < 2:
        return
    seg = np.diff(rc, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(*seg.T) * 2).astype(int))  # 0.5 px steps
    t = np.concatenate([np.arange(k) / k for k in n])
    base = np.repeat(rc[:-1], n, axis=0) + np.repeat(seg, n, axis=0) * t[:, None]
    pts = np.vstack([base, rc[-1:]])
    if width_px <= 1:
        cells = [np.rint(pts).astype(int)]
    else:  # the 2 × 2 pixels around each sample
        low = np.floor(pts).astype(int)
        cells = [low + (dr, dc) for dr in (0, 1) for dc in (0, 1)]
    for rcs in cells:
        r, cc = rcs[:, 0], rcs[:, 1]
        ok = (r >= 0) & (r < mask.shape[0]) & (cc >= 0) & (cc < mask.shape[1])
        mask[r[ok], cc[ok]] = True


def encode_lulc(rng: np.random.Generator, lulc: np.ndarray, product: str, pixel_m: float,
                road: np.ndarray | None = None, river: np.ndarray | None = None) -> np.ndarray:
    """The internal classes ``lulc`` written with ``product``'s codes (``PRODUCT_DTYPES``;
    nodata 0 stays 0). Classes with several codes take them per blob (~300 m, one smooth
    random field for all classes, shifted per class) in the shares of ``PRODUCT_MIX``; ``road``
    pixels take the product's road code, ``river`` pixels its river code, and a water body on
    the scene edge covering at least ``SEA_MIN_SHARE`` of the scene its sea code. Draws
    nothing for WorldCover, whose codes are the internal classes."""
    if product not in PRODUCT_MIX:
        raise ValueError(f"land-cover product '{product}': choose one of {', '.join(PRODUCTS)}")
    out = np.zeros(lulc.shape, PRODUCT_DTYPES[product])
    blobs = None
    for k, (cls, mix) in enumerate(PRODUCT_MIX[product].items()):
        on = lulc == cls
        codes = np.array([c for c, _ in mix], out.dtype)
        if codes.size == 1:
            out[on] = codes[0]
            continue
        if blobs is None:
            f = power_law_field(rng, lulc.shape, pixel_m, beta=4.0, corner_m=300.0,
                                coarse=max(1, int(round(20.0 / pixel_m))))
            blobs = ndtr(f / max(float(f.std()), 1e-9))  # uniform 0 … 1 over the scene
        shares = np.cumsum([w for _, w in mix])
        u = (blobs[on] + 0.618 * k) % 1.0 * shares[-1]
        out[on] = codes[np.minimum(np.searchsorted(shares, u, side="right"), codes.size - 1)]
    if road is not None:
        out[road & (lulc == BUILT_UP)] = ROAD_CODES[product]
    water = lulc == WATER
    if river is not None:
        out[water & river] = RIVER_CODES[product]
        water &= ~river
    labels, n = ndimage.label(water)
    if n and SEA_CODES[product] not in (c for c, _ in PRODUCT_MIX[product][WATER]):
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        sea = [i for i in edge if i and sizes[i] >= SEA_MIN_SHARE * lulc.size]
        out[np.isin(labels, sea)] = SEA_CODES[product]
    return out
