"""Fault tests of the point readers: generated files of every format, valid-shaped and hostile.

The promise (:mod:`psirel.errors`): whatever the file holds, :func:`read_points` returns a
:class:`PointCloud` whose arrays agree with each other, or raises one :class:`PsirelError`
whose one-line message names the file; never another exception, never a hang.

Each generator starts from a file the reader accepts and mutates it (names, cells, bytes,
sidecars, metadata), so that most examples get past the first check and reach the deeper
reader code. Every crash found this way has a plain regression test at the end.

``PSIREL_FUZZ_SCALE=20 pytest tests/io/test_reader_fuzz.py`` runs 20 times the examples (a
longer campaign; the default keeps the file well under a minute).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from psirel.errors import (
    InvalidColumn,
    InvalidValues,
    NotPoints,
    PsirelError,
    UnreadableFile,
)
from psirel.io.points import read_points
from psirel.io.schema import ROLES, PointSchema

HANG_S = 30  # one read of a file of a few rows taking this long is a hang
SCALE = int(os.environ.get("PSIREL_FUZZ_SCALE", "1"))
FUZZ = dict(deadline=None, phases=[p for p in Phase if p != Phase.explain],
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------------------- the promise
class Hang(BaseException):  # BaseException: no ``except Exception`` of the reader eats it
    pass


@contextmanager
def no_hang(seconds: float = HANG_S):
    """Raise :class:`Hang` in the block once it has run ``seconds`` (SIGALRM)."""
    if not hasattr(signal, "setitimer"):  # pragma: no cover - not POSIX
        yield
        return

    def alarm(signum, frame):
        raise Hang(f"read_points ran over {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def assert_consistent(c) -> None:
    """A cloud the reader returned: one value per point in every per-point array, finite
    coordinates, velocities and series, coherence in [0, 1], labels 0/1, dates increasing."""
    n = len(c.x)
    assert n > 0
    for name in ("y", "ids", "velocity_mm_yr", "coherence"):
        assert len(getattr(c, name)) == n, name
    assert np.isfinite(c.x).all() and np.isfinite(c.y).all()
    assert np.isfinite(c.velocity_mm_yr).all()
    assert ((c.coherence >= 0) & (c.coherence <= 1)).all()  # NaN fails too
    assert c.series_mm.shape == (n, len(c.dates)) and np.isfinite(c.series_mm).all()
    assert len(c.series_columns) == len(c.dates)
    assert (np.diff(c.dates.astype(np.int64)) > 0).all()
    assert c.height_m is None or len(c.height_m) == n
    assert c.labels is None or (len(c.labels) == n and set(np.unique(c.labels)) <= {0, 1})
    assert all(len(a) == n for a in c.attributes.values())
    assert len(c.source_xy[0]) == len(c.source_xy[1]) == n
    assert {"velocity", "coherence"} <= set(c.roles)


def note(what: str) -> None:
    """Count ``what`` in hypothesis' statistics (``--hypothesis-show-statistics``)."""
    if currently_in_test_context():
        event(what)


def outcome(path: Path, **kw):
    """The cloud, checked, or the PsirelError, checked; anything else propagates."""
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cloud = read_points(path, **kw)
        except PsirelError as exc:
            msg = str(exc)
            assert "\n" not in msg
            assert path.name in msg or path.with_suffix(".prj").name in msg, msg
            note(f"error: {type(exc).__name__}")
            return exc
    assert_consistent(cloud)
    note("read")
    return cloud


# ---------------------------------------------------------------------------- names
# Base names the reader's aliases recognise (valid files are built from these) ...
XY_BASE = [("x", "y"), ("X", "Y"), ("easting", "northing"), ("east", "north"), ("lon", "lat"),
           ("longitude", "latitude"), ("lng", "lat"), ("LON", "LAT")]
GEOGRAPHIC = {"lon", "longitude", "lng", "pnt_lon"}
VEL_BASE = ["velocity", "vel", "mean_velocity", "v", "mean_veloc", "VEL"]
COH_BASE = ["coherence", "coh", "temporal_coherence", "temp_coh", "COHERENCE", "rmse",
            "rmse_ts"]
HEIGHT_BASE = ["height", "hgt", "height_wgs84", "HEIGHT"]
ID_BASE = ["pid", "id", "point_id", "code", "CODE", "ID"]
# ... recognised exports (profiles), as (name, role) ...
PROFILE_BASES = {
    "depsi": [("pnt_lon", "lon"), ("pnt_lat", "lat"), ("pnt_id", "id"), ("pnt_height", "height"),
              ("pnt_enscoh", "coherence"), ("pnt_linear", "velocity_m")],
    "egms-l2": [("pid", "id"), ("latitude", "lat"), ("longitude", "lon"), ("easting", "laea_x"),
                ("northing", "laea_y"), ("height", "height"), ("temporal_coherence", "coherence"),
                ("amplitude_dispersion", "coherence"), ("mean_velocity", "velocity")],
    "egms-l3": [("pid", "id"), ("easting", "laea_x"), ("northing", "laea_y"),
                ("height", "height"), ("rmse", "rmse"), ("mean_velocity", "velocity")],
    "sarproz": [("ID", "id"), ("LAT", "lat"), ("LON", "lon"), ("SVET", "extra"),
                ("LVET", "extra"), ("VEL", "velocity"), ("COHER", "coherence"),
                ("HEIGHT", "height")],
}
PROFILE_DATES = {"depsi": "d_%Y%m%d", "sarproz": "%y/%m/%d", "egms-l2": "%Y%m%d",
                 "egms-l3": "%Y%m%d"}
# ... and names that a fault adds: other aliases, other exports' names, near misses.
NOISE_NAMES = ["amplitude_dispersion", "mp_type", "reliable", "SVET", "LVET", "omega", "dem",
               "dem_error", "V_STDEV", "EFF_AREA", "H_STDEV", "note", "", " x ", "WKT",
               "geometry", "Truth", "pnt_linear", "VLOS", "pnt_enscoh", "COHER", "pnt_lon",
               "pnt_lat", "x", "lat", "vel", "coh", "height", "pid", "D20200101", "20200113",
               "d_20200125", "20/02/06", "D20201345", "20200230", "D2020011", "D２０２００１０１",
               "d_2020013x"]
DATE_STYLES = ["D%Y%m%d", "%Y%m%d", "D%Y%m%d", "%Y%m%d", "d_%Y%m%d", "%y/%m/%d"]
CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-0", "1_000", "0x1F",
         "1,5", "true", "FALSE", "١٢", "²", "+-3", "9" * 25, "-" + "9" * 19, '"a, b"',
         '"unterminated', 'x"y', ";", "\t", ",", "|", "é", "\x00", "NULL", " 1 ", "1.5e-320",
         "3.4028236e38", "-1e39", "0.5", "1", "-2"]
PRJ_BAD = ['GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
           'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]', "garbage", "",
           "EPSG:999999", "\x00\xff"]
LOCAL = 'LOCAL_CS["site grid",UNIT["metre",1]]'  # a CRS that nothing transforms to or from
CSVT = ["Integer", "Integer64", "Integer(Boolean)", "Integer(Int16)", "Real", "Real(Float32)",
        "String", "Date", "DateTime", "Real(12.3)", "Unknown"]
CSV_FAULTS = ["cells", "drop column", "duplicate name", "ragged row", "huge field",
              "blank line", "latin-1", "garbage bytes", "truncated", "binary", "bad prj", "csvt",
              "few rows", "no crs", "other crs", "label", "bbox", "target crs", "schema",
              "zip member", "noise names"]  # the ends, drawn most, are faults that still read deep


def fmt(v: float, style: int) -> str:
    return [repr, lambda f: f"{f:.3f}", lambda f: f"{f:.6e}", lambda f: str(int(f))][style](v)


def mostly(common, *rare):
    """``common`` mostly: it sits at both ends of the list, where hypothesis draws most."""
    return st.sampled_from([common] * 3 + list(rare) + [common] * 3)


def a_number(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False)


@st.composite
def schema_for(draw, names: list[str]):
    """A column map naming some of ``names`` (or a missing column), a series prefix and
    units; None when the drawn map is itself invalid (the schema's own errors are tested in
    test_schema.py)."""
    roles = draw(st.lists(st.sampled_from(ROLES), unique=True, max_size=3))
    pool = [*names, "nope"]
    cols = tuple((r, draw(st.sampled_from(pool))) for r in roles)
    prefix = draw(mostly(None, "D", "d_", "X"))
    units = draw(st.sampled_from([None, "mm", "m"]))
    try:
        return PointSchema(columns=cols, series_prefix=prefix, units=units)
    except PsirelError:
        return None


@st.composite
def read_args(draw, names: list[str], faults=None) -> dict:
    """``read_points`` keywords: the defaults, and (each when its fault is drawn) a label
    column, a bbox, a target CRS, a column map."""
    if faults is None:
        faults = set(draw(st.lists(st.sampled_from(["label", "bbox", "target crs", "schema"]),
                                   max_size=2, unique=True)))
    kw = {}
    if "label" in faults:
        kw["label"] = draw(st.sampled_from(["reliable", "nope", *names]))
    if "bbox" in faults:
        kw["bbox"] = draw(st.sampled_from([(0, 0, 1e7, 1e7), (-180, -90, 180, 90),
                                           (1, 1, 2, 2), (3e5, 4e6, 5e5, 5e6)]))
    if "target crs" in faults:
        kw["target_crs"] = draw(st.sampled_from(["EPSG:3035", "EPSG:4326", "EPSG:32632",
                                                 LOCAL]))
    if "schema" in faults:
        kw["schema"] = draw(schema_for(names))
    return kw


# ---------------------------------------------------------------------------- CSV
@st.composite
def csv_columns(draw) -> tuple[list[tuple[str, str]], str | None]:
    """``(name, role)`` of a valid header (an alias set or a recognised export's), and the
    export's name."""
    profile = draw(mostly(None, *PROFILE_BASES))
    if profile is not None:
        cols = list(PROFILE_BASES[profile])
        style = PROFILE_DATES[profile]
    else:
        xn, yn = draw(st.sampled_from(XY_BASE))
        geo = xn.lower() in GEOGRAPHIC
        cols = [(xn, "lon" if geo else "x"), (yn, "lat" if geo else "y"),
                (draw(st.sampled_from(VEL_BASE)), "velocity")]
        coh = draw(st.sampled_from(COH_BASE))
        cols.append((coh, "rmse" if "rmse" in coh else "coherence"))
        if draw(st.booleans()):
            cols.append((draw(st.sampled_from(HEIGHT_BASE)), "height"))
        if draw(st.integers(0, 3)) < 3:
            cols.append((draw(st.sampled_from(ID_BASE)), "id"))
        if draw(st.integers(0, 3)) == 3:
            cols.append(("reliable", "label"))
        style = draw(st.sampled_from(DATE_STYLES[:4]))
    dates = draw(st.lists(st.dates(dt.date(2015, 1, 1), dt.date(2025, 12, 31)), max_size=4,
                          unique=True))
    role = "series_m" if profile == "depsi" else "series"
    cols += [(d.strftime(style), role) for d in dates]
    return list(draw(st.permutations(cols))), profile


def good_cell(draw, role: str, row: int) -> str:
    style = draw(st.integers(0, 3))
    ranges = {"x": (3e5, 7e5), "y": (4e6, 6e6), "laea_x": (4e6, 5e6), "laea_y": (2e6, 3e6),
              "lon": (-180, 180), "lat": (-90, 90), "velocity": (-50, 50),
              "velocity_m": (-0.04, 0.04), "coherence": (0, 1), "rmse": (0, 5),
              "height": (-100, 4000), "series": (-100, 100), "series_m": (-0.4, 0.4),
              "extra": (-1e3, 1e3)}
    if role in ranges:
        return fmt(draw(a_number(*ranges[role])), style if role in ("x", "y", "height")
                   else style % 3)
    if role == "id":
        return draw(st.sampled_from([f"P{row}", str(row), str(2**62 + row), f"1xUj{row}"]))
    if role == "label":
        return draw(st.sampled_from(["0", "1", "true", "false"]))
    return draw(st.one_of(st.text(max_size=5), a_number(-1e6, 1e6).map(repr)))


@st.composite
def csv_file(draw):
    """``(bytes, prj text, csvt text, as zip, read_points keywords)``: a valid CSV (an alias
    header or a recognised export's; delimiter, quoting, line ends, BOM, zip varied) with up
    to three faults of :data:`CSV_FAULTS` applied."""
    cols, profile = draw(csv_columns())
    k = draw(st.sampled_from([1, 2, 0, 3, 1]))
    faults = set(draw(st.lists(st.sampled_from(CSV_FAULTS), min_size=k, max_size=k,
                               unique=True)))
    if "drop column" in faults and cols:
        cols.pop(draw(st.integers(0, len(cols) - 1)))
    if "noise names" in faults:
        extra = draw(st.lists(st.one_of(st.sampled_from(NOISE_NAMES), st.text(max_size=6)),
                              min_size=1, max_size=3))
        taken = {n.strip() for n, _ in cols}
        cols += [(n, "extra") for n in dict.fromkeys(extra) if n.strip() not in taken]
    if "duplicate name" in faults and cols:
        n, r = draw(st.sampled_from(cols))
        cols.insert(draw(st.integers(0, len(cols))),
                    (draw(st.sampled_from([n, n.upper(), n.lower(), f" {n}"])), r))
    names = [n for n, _ in cols]
    n_rows = draw(st.sampled_from([3, 1, 2, 5, 4])) if "few rows" not in faults else 0
    rate = draw(st.sampled_from([2, 10, 40])) if "cells" in faults else 0
    rows = []
    for i in range(n_rows):
        row = [draw(st.one_of(st.sampled_from(CELLS), st.text(max_size=4)))
               if rate and draw(st.integers(0, 99)) < rate else good_cell(draw, role, i)
               for _, role in cols]
        rows.append(row)
    if "ragged row" in faults and rows:
        r = rows[draw(st.integers(0, len(rows) - 1))]
        r[:] = r[:-1] if r and draw(st.booleans()) else [*r, "1"]
    if "huge field" in faults and rows:
        rows[-1][0] = "9" * 140_000
    delim = draw(mostly(",", ";", "\t", "|"))
    quoting = draw(mostly("naive", csv.QUOTE_MINIMAL, csv.QUOTE_ALL))
    eol = draw(mostly("\n", "\r\n", "\r"))
    if quoting == "naive":
        lines = [delim.join(r) for r in [names, *rows]]
        if "blank line" in faults:
            lines.insert(draw(st.integers(0, len(lines))), "")
        text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    else:
        buf = io.StringIO()
        csv.writer(buf, delimiter=delim, quoting=quoting, lineterminator=eol).writerows(
            [names, *rows])
        text = buf.getvalue()
    bom = "\ufeff" if draw(st.booleans()) else ""
    data = (bom + text).encode("latin-1" if "latin-1" in faults else "utf-8", errors="replace")
    if "garbage bytes" in faults:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if "truncated" in faults:
        data = data[:draw(st.integers(0, len(data)))]
    if "binary" in faults:
        data = draw(st.binary(max_size=64))
    kw = draw(read_args(names, faults))
    geographic = any(r in ("lon", "lat") for _, r in cols) or profile is not None
    prj = None
    if "bad prj" in faults:
        prj = draw(st.sampled_from(PRJ_BAD))
    elif "no crs" not in faults and not geographic:
        if draw(st.booleans()):
            prj = "EPSG:32632"
        else:
            kw["crs"] = "EPSG:32632"
    if "other crs" in faults:
        kw["crs"] = draw(st.sampled_from(["EPSG:4326", 3035, "not a crs", "EPSG:0", LOCAL,
                                          "EPSG:5773"]))
    if "zip member" in faults:  # the CSV of a zip named as the layer (ignored for a .csv)
        kw["layer"] = draw(st.sampled_from(["pts.csv", "pts.xml", "pts.prj", "nope"]))
    csvt = None
    if "csvt" in faults:
        k = max(len(names) + draw(mostly(0, -1, 1)), 0)
        csvt = ",".join(draw(st.lists(st.sampled_from(CSVT), min_size=k, max_size=k)))
    return data, prj, csvt, draw(st.integers(0, 4)) == 4, kw


def write_csv_case(d: Path, case) -> Path:
    data, prj, csvt, as_zip, _ = case
    if as_zip:  # as EGMS delivers it: the CSV (and its sidecars) and an XML file in a zip
        path = d / "egms.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("pts.csv", data)
            if prj is not None:
                z.writestr("pts.prj", prj)
            if csvt is not None:
                z.writestr("pts.csvt", csvt)
            z.writestr("pts.xml", "<metadata/>")
        return path
    path = d / "pts.csv"
    path.write_bytes(data)
    if prj is not None:
        path.with_suffix(".prj").write_text(prj)
    if csvt is not None:
        path.with_suffix(".csvt").write_text(csvt)
    return path


@settings(max_examples=300 * SCALE, **FUZZ)
@given(case=csv_file())
def test_csv_text_fuzz(case):
    """Real-ish headers (aliases, EGMS, DePSI, SARPROZ), delimiters, quoting, line ends, BOM,
    zip archives; faults: dropped, extra and duplicated columns, hostile cells, ragged rows,
    blank lines, Latin-1, garbage bytes, truncation, binary junk, a bad .prj or .csvt, no or
    another CRS, a label, a bbox, a target CRS, a column map, a 140 kB field."""
    with tempfile.TemporaryDirectory() as d:
        outcome(write_csv_case(Path(d), case), **case[4])


# ---------------------------------------------------------------------------- hostile values
HOSTILE = st.one_of(st.floats(), st.sampled_from([np.nan, np.inf, -np.inf, 1e39, -3.5e38,
                                                  3.4028235e38, 1e-320, -0.0]))


@st.composite
def hostile_csv(draw):
    """A valid header; in some columns values that are NaN, infinite, out of range or beyond
    float32; maybe identical coordinates; dates in any order, maybe one twice."""
    n = draw(st.integers(1, 5))
    geographic = draw(st.booleans())

    def column(good, hostile=HOSTILE):
        bad = draw(st.integers(0, 3)) == 3
        return draw(st.lists(st.one_of(good, hostile) if bad else good, min_size=n,
                             max_size=n))

    if geographic:
        x, y = column(a_number(-180, 180), a_number(-1e4, 1e4)), \
            column(a_number(-90, 90), a_number(-1e4, 1e4))
    else:
        x, y = column(a_number(3e5, 7e5)), column(a_number(4e6, 6e6))
    if draw(st.integers(0, 3)) == 3:
        x, y = [x[0]] * n, [y[0]] * n
    cols = {("lon" if geographic else "x"): x, ("lat" if geographic else "y"): y,
            "pid": [f"P{i}" for i in range(n)], "velocity": column(a_number(-50, 50)),
            "coherence": column(a_number(0, 1), st.floats(-2, 2) | st.just(100.0) | HOSTILE)}
    if draw(st.booleans()):
        cols["height"] = column(a_number(-100, 4000))
    dates = draw(st.lists(st.dates(dt.date(2015, 1, 1), dt.date(2025, 12, 31)), max_size=5))
    if dates and draw(st.integers(0, 3)) == 3:
        dates.append(draw(st.sampled_from(dates)))  # the same date twice
    for d in dates:  # in drawn order: not increasing; a date twice, in one or two styles
        name = d.strftime(draw(st.sampled_from(["D%Y%m%d", "%Y%m%d"])))
        cols.setdefault(name, column(a_number(-100, 100)))
    order = draw(st.permutations(list(cols)))
    lines = [",".join(order)] + [",".join(repr(float(cols[c][i])) if c != "pid"
                                          else cols[c][i] for c in order) for i in range(n)]
    return "\n".join(lines) + "\n", cols, geographic


@settings(max_examples=150 * SCALE, **FUZZ)
@given(case=hostile_csv(), crs=mostly(None, "EPSG:32632", "EPSG:4326"),
       target=mostly(None, "EPSG:32632", "EPSG:3035"))
def test_csv_hostile_values(case, crs, target):
    """NaN/inf velocities, coherence outside [0, 1], lon/lat out of range, identical
    coordinates, dates not increasing or repeated: an error, or the values read exactly."""
    text, cols, geographic = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hostile.csv"
        path.write_text(text)
        if not geographic:
            path.with_suffix(".prj").write_text("EPSG:32632")
        got = outcome(path, crs=crs, target_crs=target)
    if isinstance(got, PsirelError):
        return
    scale = 1000.0 if got.units == "m" else 1.0
    np.testing.assert_array_equal(
        got.velocity_mm_yr, (np.array(cols["velocity"]) * scale).astype(np.float32))
    np.testing.assert_array_equal(got.coherence, np.array(cols["coherence"], np.float32))
    for j, c in enumerate(got.series_columns):
        np.testing.assert_array_equal(
            got.series_mm[:, j], (np.array(cols[c]) * scale).astype(np.float32))
        assert str(got.dates[j]).replace("-", "") == c.lstrip("D")


# ---------------------------------------------------------------------------- vector files
DTYPES = ["float64", "float32", "int32", "int64", "bool", "str", "datetime", "none", "mixed",
          "category", "list"]
VECTOR_FAULTS = ["odd dtypes", "lines", "polygons", "multipoints", "mixed geometries",
                 "null geometry", "empty geometry", "no crs", "empty layer", "drop role",
                 "hostile values", "extra columns", "label", "bbox", "target crs", "schema",
                 "3d points", "single-part multipoints"]  # the ends, drawn most, read deep


def column_values(draw, kind: str, n: int):
    if kind in ("float64", "float32"):
        elem = st.floats(width=32) if draw(st.booleans()) else a_number(-50, 50)
        return np.array(draw(st.lists(elem, min_size=n, max_size=n)), dtype=kind)
    if kind in ("int32", "int64"):
        lo, hi = (-(2**31), 2**31 - 1) if kind == "int32" else (-(2**63), 2**63 - 1)
        return np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), kind)
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind in ("str", "category"):
        words = draw(st.lists(st.text(st.characters(exclude_categories=["Cs"],
                                                    exclude_characters="\x00"), max_size=5),
                              min_size=n, max_size=n))
        return pd.Categorical(words) if kind == "category" else np.array(words, dtype=object)
    if kind == "datetime":
        return pd.to_datetime(np.arange(n), unit="D", origin="2020-01-01").values
    if kind == "none":
        return np.array([None] * n, dtype=object)
    if kind == "list":  # Parquet keeps it; GDAL drivers refuse or write it as text
        out = np.empty(n, dtype=object)
        out[:] = [[float(i)] * (i % 3) for i in range(n)]
        return out
    return np.array([draw(st.sampled_from([1.5, None, np.nan, "a"])) for _ in range(n)],
                    dtype=object)


def geometries(draw, faults: set[str], n: int, geographic: bool) -> list:
    lo, hi = ((-10, 10), (40, 50)) if geographic else ((4e5, 4.1e5), (5e6, 5.1e6))
    mk = {"point": shapely.Point,
          "single-part multipoints": lambda p: shapely.MultiPoint([p]),
          "multipoints": lambda p: shapely.MultiPoint([p, (p[0] + 1, p[1])]),
          "lines": lambda p: shapely.LineString([p, (p[0] + 1, p[1] + 1)]),
          "polygons": lambda p: shapely.box(p[0], p[1], p[0] + 1, p[1] + 1),
          "empty geometry": lambda p: shapely.Point(),
          "3d points": lambda p: shapely.Point(*p, 7.0),
          "null geometry": lambda p: None}
    kinds = [k for k in mk if k in faults] or ["point"]
    mixed = "mixed geometries" in faults
    out = []
    for i in range(n):
        p = (draw(a_number(*lo)), draw(a_number(*hi)))
        k = kinds[0] if i == 0 or not mixed and len(kinds) == 1 else \
            draw(st.sampled_from(["point", *kinds]))
        out.append(mk[k](p))
    return out


@st.composite
def vector_frame(draw, faults: set[str]):
    """A valid point GeoDataFrame (velocity, coherence, maybe height, id, label, dates and
    other columns of any dtype), with the drawn faults applied."""
    with np.errstate(invalid="ignore"):  # NaN % 100 is NaN, as wanted
        return _frame(draw, faults)


def _frame(draw, faults: set[str]):
    n = 0 if "empty layer" in faults else draw(st.sampled_from([3, 1, 2, 5, 4]))
    crs = None if "no crs" in faults else draw(st.sampled_from(["EPSG:32632", "EPSG:4326"]))
    cols = {"vel": column_values(draw, "float64", n), "coh": np.array(
        draw(st.lists(a_number(0, 1), min_size=n, max_size=n)), dtype=np.float32)}
    cols["vel"] = np.nan_to_num(cols["vel"]) % 50
    for name in draw(st.lists(st.sampled_from(["height", "pid", "reliable", "D20200101",
                                               "D20200113", "20200125"]), unique=True)):
        cols[name] = (np.arange(n) % 2 if name == "reliable" else
                      np.array([f"P{i}" for i in range(n)], dtype=object) if name == "pid"
                      else column_values(draw, "float64", n) % 100)
    if "hostile values" in faults and n:
        name = draw(st.sampled_from([c for c in cols if c != "pid"]))
        cols[name] = cols[name].astype(object)
        cols[name][draw(st.integers(0, n - 1))] = draw(HOSTILE | st.sampled_from([None, -1]))
        cols[name] = np.array(cols[name].tolist(), dtype=np.float64)
    if "odd dtypes" in faults:
        name = draw(st.sampled_from(list(cols)))
        cols[name] = column_values(draw, draw(st.sampled_from(DTYPES)), n)
    if "extra columns" in faults:
        for name in draw(st.lists(st.sampled_from(["note", "velocity", "mean_velocity", "v",
                                                   "coherence", "temporal_coherence", "rmse",
                                                   "x", "y", "id", "CODE", "dem"]),
                                  min_size=1, max_size=3, unique=True)):
            cols[name] = column_values(draw, draw(st.sampled_from(DTYPES)), n)
    if "drop role" in faults:
        cols.pop(draw(st.sampled_from(list(cols))))
    geoms = geometries(draw, faults, n, crs == "EPSG:4326")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def vector_faults(extra: list[str] = ()):
    return st.sampled_from([1, 2, 0, 3, 1]).flatmap(
        lambda k: st.lists(st.sampled_from([*VECTOR_FAULTS, *extra]), min_size=k, max_size=k,
                           unique=True).map(set))


def assert_frame_xy(got, frame, kw: dict, ordered: bool = True) -> None:
    """A cloud read from ``frame``'s layer, neither filtered nor reprojected, has exactly the
    frame's coordinates (a null geometry never becomes 0, 0); in the frame's order unless
    the writer reorders (GDAL's FlatGeobuf writer sorts by its spatial index)."""
    if isinstance(got, PsirelError) or kw.get("bbox") or kw.get("target_crs"):
        return
    geoms = [shapely.get_geometry(g, 0) if isinstance(g, shapely.MultiPoint) else g
             for g in frame.geometry.values]
    want, read = [(g.x, g.y) for g in geoms], list(zip(got.x, got.y, strict=True))
    assert read == want if ordered else sorted(read) == sorted(want)


OGR = {"gpkg": "GPKG", "fgb": "FlatGeobuf", "shp": "ESRI Shapefile"}
OGR_FAULTS = ["attribute table first", "more layers", "layer argument", "bad prj",
              "no .shx", "no .dbf", "bad .cpg"]


@settings(max_examples=100 * SCALE, **FUZZ)
@given(ext=st.sampled_from(list(OGR)), faults=vector_faults(OGR_FAULTS), data=st.data())
def test_ogr_fuzz(ext, faults, data):
    """GeoPackage, FlatGeobuf, shapefile: random columns and dtypes, empty layers, lines,
    polygons, multipoints, null and empty geometries, no CRS, several layers (GeoPackage:
    also an attribute table first), a garbage .prj or a missing part of a shapefile."""
    frame = data.draw(vector_frame(faults))
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(d) / f"pts.{ext}"
        layers = []
        if ext == "gpkg" and "attribute table first" in faults:
            pyogrio.write_dataframe(pd.DataFrame({"x": [1.0], "y": [2.0], "vel": [1.0],
                                                  "coh": [0.5]}), path, layer="attrs")
            layers.append("attrs")
        try:
            pyogrio.write_dataframe(frame, path, driver=OGR[ext], layer="pts",
                                    append=bool(layers))
        except Exception as exc:  # a frame the driver will not write: nothing to read
            event(f"not written: {type(exc).__name__}")
            return
        layers.append("pts")
        if ext == "gpkg" and "more layers" in faults:
            more = data.draw(vector_frame(data.draw(vector_faults())))
            try:
                pyogrio.write_dataframe(more, path, layer="more", append=True)
                layers.append("more")
            except Exception:
                pass
        if ext == "shp" and "bad prj" in faults:
            path.with_suffix(".prj").write_text(data.draw(st.sampled_from(PRJ_BAD)))
        if ext == "shp" and "bad .cpg" in faults:
            path.with_suffix(".cpg").write_bytes(data.draw(st.sampled_from(
                [b"UTF-99", b"\xff\xfe", b"LATIN1", b""])))
        for part in (".shx", ".dbf"):
            if ext == "shp" and f"no {part}" in faults:
                path.with_suffix(part).unlink(missing_ok=True)
        kw = data.draw(read_args(list(frame.columns), faults))
        if "layer argument" in faults:
            kw["layer"] = data.draw(st.sampled_from([*layers, "nope"]))
        got = outcome(path, **kw)
        if kw.get("layer", layers[0]) == "pts":
            assert_frame_xy(got, frame, kw, ordered=ext != "fgb")


# ---------------------------------------------------------------------------- GeoParquet
GEO_MUTATIONS = ["bad json", "list", "null", "no primary", "columns list", "crs garbage",
                 "crs null", "no crs", "crs number", "encoding point", "encoding polygon",
                 "encoding number", "primary number"]


def mutate_geo(geo: dict, how: str) -> bytes:
    prim = geo.get("primary_column", "geometry")
    col = geo["columns"][prim]
    if how == "bad json":
        return b'{"version": "1.0.0", "columns": {'
    if how == "list":
        return b"[1, 2]"
    if how == "null":
        return b"null"
    if how == "no primary":
        geo["primary_column"] = "nope"
    elif how == "primary number":
        geo["primary_column"] = 0
    elif how == "columns list":
        geo["columns"] = [col]
    elif how == "crs garbage":
        col["crs"] = {"type": "nonsense"}
    elif how == "crs number":
        col["crs"] = 4326.5
    elif how == "crs null":
        col["crs"] = None
    elif how == "no crs":
        col.pop("crs", None)
    elif how == "encoding point":
        col["encoding"] = "point"
    elif how == "encoding polygon":
        col["encoding"] = "polygon"
    elif how == "encoding number":
        col["encoding"] = 5
    return json.dumps(geo).encode()


@settings(max_examples=100 * SCALE, **FUZZ)
@given(faults=vector_faults(), kind=mostly("WKB", "geoarrow", "plain"),
       how=st.sampled_from(["as written"] * 6 + GEO_MUTATIONS + ["as written"] * 6),
       data=st.data())
def test_parquet_fuzz(faults, kind, how, data):
    """GeoParquet (WKB or GeoArrow points) with random columns, dtypes and geometries, its
    ``geo`` metadata broken in the ways a foreign writer might break it; plain Parquet with
    coordinate columns."""
    frame = data.draw(vector_frame(faults))
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(d) / "pts.parquet"
        try:
            if kind == "plain":
                plain = pd.DataFrame(frame.drop(columns="geometry"))
                plain["x"], plain["y"] = frame.geometry.x, frame.geometry.y
                plain.to_parquet(path)
            else:
                frame.to_parquet(path, geometry_encoding=kind)
        except Exception as exc:  # e.g. GeoArrow of lines and points mixed
            event(f"not written: {type(exc).__name__}")
            return
        if how != "as written" and kind != "plain":
            table = pq.read_table(path)
            meta = dict(table.schema.metadata)
            meta[b"geo"] = mutate_geo(json.loads(meta[b"geo"]), how)
            pq.write_table(table.replace_schema_metadata(meta), path)
        kw = data.draw(read_args([*frame.columns, "x", "y"], faults))
        got = outcome(path, **kw)
        if kind != "plain" and how in ("as written", "no crs", "crs null"):
            assert_frame_xy(got, frame, kw)


# ---------------------------------------------------------------------------- corrupt files
@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, Path]:
    """One valid file of each binary format (and a zipped CSV), read fine as they are."""
    d = tmp_path_factory.mktemp("valid")
    n = 40
    rng = np.random.default_rng(0)
    frame = gpd.GeoDataFrame(
        {"pid": [f"P{i}" for i in range(n)], "vel": rng.normal(0, 3, n),
         "coh": rng.uniform(0, 1, n), "height": rng.normal(300, 9, n),
         "D20200101": np.zeros(n), "D20200113": rng.normal(0, 2, n)},
        geometry=gpd.points_from_xy(rng.uniform(4e5, 4.1e5, n), rng.uniform(5e6, 5.1e6, n)),
        crs="EPSG:32632")
    out = {}
    for ext, driver in OGR.items():
        out[ext] = d / f"ok.{ext}"
        pyogrio.write_dataframe(frame, out[ext], driver=driver)
    out["parquet"] = d / "ok.parquet"
    frame.to_parquet(out["parquet"])
    out["zip"] = d / "ok.zip"
    text = pd.DataFrame(frame.drop(columns="geometry")).assign(
        x=frame.geometry.x, y=frame.geometry.y).to_csv(index=False)
    with zipfile.ZipFile(out["zip"], "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ok.csv", text)
        z.writestr("ok.prj", "EPSG:32632")
    for p in out.values():
        assert len(read_points(p)) == n
    return out


MUTATIONS = ["truncate", "flip", "overwrite", "zero"]


@settings(max_examples=150 * SCALE, **FUZZ)
@given(ext=st.sampled_from(["gpkg", "fgb", "shp", "parquet", "zip"]),
       part=st.sampled_from(["", "", ".shx", ".dbf", ".prj"]),
       how=st.sampled_from(MUTATIONS), where=st.floats(0, 1), size=st.integers(1, 64),
       noise=st.binary(min_size=64, max_size=64))
def test_corrupt_binary(valid_files, ext, part, how, where, size, noise):
    """A valid file of each binary format with bytes cut, flipped, overwritten or zeroed (for
    a shapefile: in any of its parts)."""
    src = valid_files[ext]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / src.name
        for sib in src.parent.glob(src.stem + ".*"):
            if sib.suffix == src.suffix or ext == "shp":
                (Path(d) / sib.name).write_bytes(sib.read_bytes())
        target = path.with_suffix(part) if ext == "shp" and part else path
        raw = bytearray(target.read_bytes())
        at = int(where * len(raw))
        if how == "truncate":
            raw = raw[:at]
        elif how == "flip":
            for k in range(min(size, 8)):
                raw[(at + 97 * k) % len(raw)] ^= noise[k] | 1
        else:
            raw[at:at + size] = (noise[:size] if how == "overwrite" else bytes(size))
        target.write_bytes(bytes(raw))
        outcome(path)


# ---------------------------------------------------------------------------- regressions
# One plain test per crash the generators above found (before the fix: the exception named).
def _csv(tmp_path, text: str, prj: str | None = "EPSG:32632", name: str = "pts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    if prj is not None:
        path.with_suffix(".prj").write_text(prj)
    return path


def expect(path: Path, error: type[PsirelError], match: str, **kw) -> None:
    got = outcome(path, **kw)
    assert isinstance(got, error), got
    assert match in str(got), str(got)


HEADER = "pid,x,y,velocity,coherence"


def test_csvt_date_on_text_column(tmp_path):
    """ValueError (numpy datetime parse) → InvalidColumn."""
    p = _csv(tmp_path, f"{HEADER}\nP0,300000,4000000,0,0\n")
    p.with_suffix(".csvt").write_text("Date,Integer,Integer,Real,Real")
    expect(p, InvalidColumn, "column 'pid' is not a date as its .csvt sidecar says (Error "
                             'parsing datetime string "P0" at position 0)')


def test_field_beyond_csv_limit(tmp_path):
    """_csv.Error (field larger than field limit) → UnreadableFile."""
    p = _csv(tmp_path, f"{HEADER}\nP0,300000,4000000,{'9' * 140_000},0.5\n")
    expect(p, UnreadableFile, "field larger than field limit")
    p = _csv(tmp_path, f"{'x' * 140_000},{HEADER}\n1,P0,300000,4000000,1,0.5\n")
    expect(p, UnreadableFile, "field larger than field limit")


def _zip(path: Path, prj: bool = True) -> Path:
    rows = "".join(f"P{i},{300000 + i},{4000000 + i},{i % 7}.25,0.{i % 9}\n" for i in range(300))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pts.csv", HEADER + "\n" + rows)
        if prj:
            z.writestr("pts.prj", 'PROJCS["WGS 84 / UTM zone 32N"' + " " * 500 + "]")
    return path


def test_damaged_zip_member(tmp_path):
    """zlib.error, BadZipFile from a sidecar, EOFError → UnreadableFile."""
    good = _zip(tmp_path / "good.zip").read_bytes()
    errors = set()
    for off in range(30, len(good) - 200, 3):  # every byte of the members' data and headers
        raw = bytearray(good)
        raw[off] ^= 0xFF
        p = tmp_path / "egms.zip"
        p.write_bytes(bytes(raw))
        got = outcome(p)
        errors.add(type(got).__name__)
    assert "UnreadableFile" in errors


def test_zip_member_name_not_utf8(tmp_path):
    """UnicodeDecodeError (a member name flagged UTF-8 that is not) → UnreadableFile."""
    raw = bytearray(_zip(tmp_path / "good.zip", prj=False).read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 9] |= 0x08  # general purpose flag bit 11: the name is UTF-8
    raw[central + 46] = 0x97  # the name's first byte: no UTF-8 start byte
    p = tmp_path / "egms.zip"
    p.write_bytes(bytes(raw))
    expect(p, UnreadableFile, "egms.zip: cannot be read ('utf-8' codec can't decode")


def test_zip_member_unsupported_compression(tmp_path):
    """NotImplementedError (a compression method zipfile lacks) → UnreadableFile."""
    raw = bytearray(_zip(tmp_path / "good.zip", prj=False).read_bytes())
    local, central = raw.index(b"PK\x03\x04"), raw.index(b"PK\x01\x02")
    raw[local + 8:local + 10] = raw[central + 10:central + 12] = (99).to_bytes(2, "little")
    p = tmp_path / "egms.zip"
    p.write_bytes(bytes(raw))
    expect(p, UnreadableFile, "egms.zip: cannot be read (")


def test_velocity_beyond_float32(tmp_path):
    """A finite float64 velocity that float32 makes infinite was returned as inf."""
    p = _csv(tmp_path, f"{HEADER}\nP0,300000,4000000,3.4028235677973366e+38,0\n"
                       "P1,300001,4000001,-1e39,0.5\nP2,300002,4000002,1.5,0.5\n")
    expect(p, InvalidValues, "column 'velocity' has 2 values beyond the float32 range "
                             "(|v| > 3.4e38) (first ids: P0, P1)")


def test_empty_point_geometry(tmp_path):
    """shapely GEOSException (getX called on empty Point) → InvalidValues."""
    p = tmp_path / "pts.gpkg"
    frame = gpd.GeoDataFrame({"vel": [1.0, 2.0], "coh": [0.5, 0.5]},
                             geometry=[shapely.Point(4e5, 5e6), shapely.Point()], crs=32632)
    pyogrio.write_dataframe(frame, p)
    expect(p, InvalidValues, "'geometry' has 1 missing or non-finite coordinates (first ids: 1)")


def _geoparquet(path: Path, geo=None, encoding: str = "WKB", geoms=None) -> Path:
    geoms = geoms if geoms is not None else [shapely.Point(4e5, 5e6), shapely.Point(4e5, 5e6)]
    frame = gpd.GeoDataFrame({"vel": [1.0, 2.0], "coh": [0.5, 0.5]}, geometry=geoms,
                             crs=32632)
    frame.to_parquet(path, geometry_encoding=encoding)
    if geo is not None:
        table = pq.read_table(path)
        meta = dict(table.schema.metadata)
        meta[b"geo"] = geo(json.loads(meta[b"geo"])) if callable(geo) else geo
        pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def _with(**changes):
    def change(geo):
        col = geo["columns"]["geometry"]
        for key, value in changes.items():
            (geo if key == "primary_column" else col)[key] = value
        return json.dumps(geo).encode()
    return change


@pytest.mark.parametrize("geo, error, match", ids=["bad json", "list", "columns list",
                                                  "no primary", "crs", "point encoding"],
                         argvalues=[
    (b'{"columns": {', UnreadableFile, "GeoParquet 'geo' metadata is not JSON"),  # JSONDecodeError
    (b"[1, 2]", UnreadableFile, "not a JSON object of columns"),  # AttributeError
    (lambda g: json.dumps({**g, "columns": [1]}).encode(), UnreadableFile,
     "not a JSON object of columns"),  # AttributeError
    (_with(primary_column="nope"), UnreadableFile,
     "no GeoParquet geometry column 'nope' (found vel, coh, geometry)"),  # KeyError
    (_with(crs={"type": "nonsense"}), UnreadableFile, "GeoParquet crs is not a CRS"),  # CRSError
    (_with(encoding="point"), NotPoints, "GeoParquet 'point' encoding of a binary column"),
])
def test_broken_geoparquet_metadata(tmp_path, geo, error, match):
    expect(_geoparquet(tmp_path / "pts.parquet", geo), error, match)


def test_null_geoarrow_point_is_missing(tmp_path):
    """A null GeoArrow point was read as (0, 0)."""
    p = _geoparquet(tmp_path / "pts.parquet", encoding="geoarrow",
                    geoms=[shapely.Point(4e5, 5e6), None])
    expect(p, InvalidValues, "'geometry' has 1 missing or non-finite coordinates (first ids: 1)")


def test_untransformable_crs(tmp_path):
    """pyproj ProjError (no transformation from or to a local CRS) → InvalidValues."""
    p = _csv(tmp_path, f"{HEADER}\nP0,300000,4000000,1,0.5\n", prj=LOCAL)
    expect(p, InvalidValues, "1 points that cannot be transformed from site grid to EPSG:4326",
           target_crs="EPSG:4326")
    p = _csv(tmp_path, f"{HEADER}\nP0,300000,4000000,1,0.5\n")
    expect(p, InvalidValues, "cannot be transformed from EPSG:32632 to site grid",
           target_crs=LOCAL)


def test_parquet_text_not_utf8(tmp_path):
    """pyarrow ArrowException (a string page that is no UTF-8, as a damaged file has) →
    UnreadableFile."""
    p = tmp_path / "pts.parquet"
    pid = pa.array([b"P0", b"P\xff9"], pa.binary()).view(pa.string())  # unvalidated
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [1.0, 2.0], "vel": [1.0, 2.0],
                             "coh": [0.5, 0.5], "pid": pid}), p)
    expect(p, UnreadableFile, "pts.parquet: cannot be read (", crs=32632)


def test_list_column_as_velocity(tmp_path):
    """ValueError (truth value of an array) from a Parquet list column → InvalidColumn."""
    p = tmp_path / "pts.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [1.0, 2.0], "vel": [[1.0], [2.0, 3.0]],
                             "coh": [0.5, 0.5]}), p)
    expect(p, InvalidColumn, "column 'vel' is not numeric (found '", crs=32632)
