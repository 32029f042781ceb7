"""The last step of every prediction: a quick-look beside the output, and a QGIS style.

``psirel predict`` writes ``<out>.quicklook/quicklook.png`` and ``quicklook.html``
(:mod:`psirel.report.quicklook`: the map over a hillshade, the histogram, the counts flagged) or
into the folder ``--report`` names, and beside a GeoPackage or shapefile output a same-named
``.qml`` that QGIS applies when it opens the layer (:mod:`psirel.report.qml`). The figure uses the
points in the input's own CRS, as the output does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from psirel.io.columns import SHAPEFILE_OUTPUT_NAMES
from psirel.io.formats import format_of
from psirel.io.points import PointCloud

QML_FORMATS = ("GPKG", "ESRI Shapefile")  # file layers QGIS styles from a same-named .qml


def default_report_dir(out: Path | str) -> Path:
    """``pred.gpkg`` → ``pred.gpkg.quicklook`` (named after the whole output name, so that
    ``pred.gpkg`` and ``pred.csv`` in one folder do not share a report)."""
    out = Path(out)
    return out.parent / f"{out.name}.quicklook"


def write_prediction_report(out: Path | str, report_dir: Path | str | None, cloud: PointCloud,
                            rel: np.ndarray, threshold: float, dem: Path | str | None,
                            partitioned: bool = False) -> dict:
    """Write the quick-look of ``rel`` ([n, 2]: reliability, reliability_std, in ``cloud``'s
    order) into ``report_dir`` (default :func:`default_report_dir`) and the ``.qml`` beside
    ``out``; the paths written and the counts, for the run's summary."""
    from psirel.report.qml import write_qml
    from psirel.report.quicklook import write_quicklook

    out = Path(out)
    folder = Path(report_dir) if report_dir is not None else default_report_dir(out)
    sx, sy = cloud.source_xy
    ql = write_quicklook(folder, sx, sy, cloud.source_crs, rel[:, 0], threshold,
                         reliability_std=rel[:, 1], dem=dem,
                         title=f"{out.name}: {len(cloud):,} points", stat="mean")
    done = {"png": str(ql.png), "html": str(ql.html), "counts": ql.counts}
    if not partitioned and format_of(out) in QML_FORMATS:
        field = (SHAPEFILE_OUTPUT_NAMES["reliability"] if format_of(out) == "ESRI Shapefile"
                 else "reliability")
        done["qml"] = str(write_qml(out.with_suffix(".qml"), field, threshold=threshold))
    return done
