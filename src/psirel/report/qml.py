"""A QGIS layer style (.qml) for a prediction: points coloured by reliability, the model's
threshold a class break.

QGIS applies ``<layer>.qml`` automatically when it opens ``<layer>.gpkg`` or ``<layer>.shp``, so
the output opens coloured. The renderer is a graduated one on the reliability field (named
``reliabilit`` in a shapefile, hence the ``field`` argument): two classes below the threshold
(reds), three at or above it (blues), in the colours of :mod:`psirel.report.colours`.

QGIS gives a value to the *first* listed range with ``lower <= value <= upper``. The ranges are
listed from the most reliable down, so a value exactly on a break belongs to the class above it:
a point with ``reliability == threshold`` is drawn reliable, as psirel calls it (unreliable iff
``reliability < threshold``). Points without a score (NULL) are not drawn.

Symbol layers carry their properties twice, as an ``<Option type="Map">`` (QGIS ≥ 3.26 reads
that) and as legacy ``<prop k= v=>`` elements (older QGIS 3 releases), as QGIS 3.22 itself wrote.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from psirel.io.atomic import atomic_write_text
from psirel.report.colours import RDYLBU_11, check_threshold, reliability_rgba

QGIS_VERSION = "3.28.0-Firenze"  # the format written; any QGIS 3 reads it
MARKER_SIZE_MM = 1.6
N_BELOW, N_ABOVE = 2, 3  # classes below and at/above the threshold
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
_UNIT_SCALE = "3x:0,0,0,0,0,0"


def class_breaks(threshold: float) -> list[tuple[float, float]]:
    """The ``(lower, upper)`` classes over [0, 1], ascending: :data:`N_BELOW` equal classes
    below ``threshold`` and :data:`N_ABOVE` above it (none on a side of zero width)."""
    t = check_threshold(threshold)
    edges = []
    if t > 0:
        edges += list(np.linspace(0.0, t, N_BELOW + 1))
    if t < 1:
        edges += list(np.linspace(t, 1.0, N_ABOVE + 1))[1 if edges else 0:]
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != 0 else "0"


def _rgba_str(rgba) -> str:
    r, g, b = (int(round(float(c) * 255)) for c in tuple(rgba)[:3])
    return f"{r},{g},{b},255"


def _props(parent: ET.Element, props: dict[str, str]) -> None:
    opt = ET.SubElement(parent, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(opt, "Option", type="QString", name=k, value=v)
    for k, v in props.items():
        ET.SubElement(parent, "prop", k=k, v=v)


def _marker(parent: ET.Element, name: str, color: str, size_mm: float) -> None:
    sym = ET.SubElement(parent, "symbol", type="marker", name=name, alpha="1",
                        clip_to_extent="1", force_rhr="0")
    layer = ET.SubElement(sym, "layer", {"class": "SimpleMarker", "enabled": "1", "pass": "0",
                                         "locked": "0"})
    _props(layer, {
        "angle": "0", "color": color, "horizontal_anchor_point": "1", "joinstyle": "bevel",
        "name": "circle", "offset": "0,0", "offset_map_unit_scale": _UNIT_SCALE,
        "offset_unit": "MM", "outline_color": "35,35,35,255", "outline_style": "no",
        "outline_width": "0", "outline_width_map_unit_scale": _UNIT_SCALE,
        "outline_width_unit": "MM", "scale_method": "diameter", "size": f"{size_mm:g}",
        "size_map_unit_scale": _UNIT_SCALE, "size_unit": "MM", "vertical_anchor_point": "1",
    })


def qml_text(field: str = "reliability", *, threshold: float,
             size_mm: float = MARKER_SIZE_MM, unreliable_on_top: bool = True) -> str:
    """The QML document (see the module docstring) as text.

    Args:
        field: the attribute holding the reliability (0..1).
        threshold: the model's threshold, a class break.
        size_mm: marker diameter (mm on screen).
        unreliable_on_top: draw features in descending reliability, so that flagged points are
            never hidden under reliable ones (QGIS sorts the features at each redraw).
    """
    t = check_threshold(threshold)
    if not field:
        raise ValueError("field must be a non-empty attribute name")
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    rend = ET.SubElement(root, "renderer-v2", {
        "type": "graduatedSymbol", "attr": field, "graduatedMethod": "GraduatedColor",
        "symbollevels": "0", "forceraster": "0", "referencescale": "-1",
        "enableorderby": "1" if unreliable_on_top else "0"})
    classes = class_breaks(t)[::-1]  # most reliable first: see the module docstring
    colours = reliability_rgba(np.array([0.5 * (a + b) for a, b in classes]), t)
    ranges = ET.SubElement(rend, "ranges")
    symbols = ET.SubElement(rend, "symbols")
    for i, ((lo, hi), rgba) in enumerate(zip(classes, colours, strict=True)):
        kind = "unreliable" if lo < t else "reliable"
        label = f"{kind} {_fmt(lo)} - {_fmt(hi)}" + (f" (threshold {_fmt(t)})" if lo == t else "")
        ET.SubElement(ranges, "range", symbol=str(i), lower=f"{lo:.15f}", upper=f"{hi:.15f}",
                      label=label, render="true")
        _marker(symbols, str(i), _rgba_str(rgba), size_mm)
    src = ET.SubElement(rend, "source-symbol")
    _marker(src, "0", _rgba_str(reliability_rgba(np.array([1.0]), t)[0]), size_mm)
    ramp = ET.SubElement(rend, "colorramp", type="gradient", name="[source]")
    rgb = [",".join(str(int(h[i:i + 2], 16)) for i in (1, 3, 5)) + ",255" for h in RDYLBU_11]
    stops = ":".join(f"{k / (len(rgb) - 1):g};{c}" for k, c in enumerate(rgb[1:-1], start=1))
    _props(ramp, {"color1": rgb[0], "color2": rgb[-1], "discrete": "0", "rampType": "gradient",
                  "stops": stops})
    order = ET.SubElement(rend, "orderby")
    # the attribute as an expression: double quotes, doubled inside
    quoted = '"' + field.replace('"', '""') + '"'
    ET.SubElement(order, "orderByClause", asc="0", nullsFirst="1").text = quoted
    ET.SubElement(root, "layerGeometryType").text = "0"  # points
    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n"


def write_qml(path: Path | str, field: str = "reliability", *, threshold: float,
              size_mm: float = MARKER_SIZE_MM, unreliable_on_top: bool = True) -> Path:
    """Write :func:`qml_text` to ``path`` atomically; the caller names it ``<output>.qml``
    beside the output layer. Returns the path."""
    path = Path(path)
    atomic_write_text(path, qml_text(field, threshold=threshold, size_mm=size_mm,
                                     unreliable_on_top=unreliable_on_top))
    return path
