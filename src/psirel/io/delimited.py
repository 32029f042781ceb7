"""Delimited text (CSV) into typed columns, from a file or from a zip archive without extracting.

``np.loadtxt`` parses 1 M rows × 70 columns in about 4 s where GDAL's CSV driver takes ~20 s;
files it cannot parse (empty fields) fall back to GDAL's driver (through ``/vsizip/`` for an
archive). Column types come from the ``.csvt`` sidecar when there is one (GDAL's convention,
written by :class:`psirel.io.sinks.CsvSink`), else from the first rows.

An EGMS download is a zip holding the CSV and an XML metadata file: :func:`zip_member` finds
the CSV, and :class:`TextSource` streams it straight out of the archive.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pyogrio.raw
from pyproj import CRS

from psirel.errors import InvalidColumn, UnreadableFile, first_line
from psirel.io.formats import CSVT_TO_DTYPE

CSV_SNIFF_ROWS = 2000  # rows read to guess each CSV column's type
DELIMITERS = ",;\t|"
INT64 = np.iinfo(np.int64)
FLOAT_EXACT = 2**53  # every integer up to this magnitude is exact as a float64
_INT_RE = re.compile(r"[+-]?[0-9]+")
# What reading a damaged zip archive raises besides OSError: a bad header or CRC, a member
# name that is no UTF-8, a corrupt deflate stream, a member cut short, an unsupported
# compression method, an encrypted member.
ZIP_ERRORS = (zipfile.BadZipFile, UnicodeDecodeError, zlib.error, EOFError, NotImplementedError,
              RuntimeError)


@dataclass(frozen=True)
class TextSource:
    """A delimited text file: ``path`` itself, or its zip member ``member``."""

    path: Path
    member: str | None = None

    def open(self) -> TextIO:
        """The text, decoded as UTF-8 (a byte-order mark is dropped)."""
        if self.member is None:
            return open(self.path, encoding="utf-8-sig", newline="")
        archive = zipfile.ZipFile(self.path)
        try:
            raw = archive.open(self.member)
        except BaseException:
            archive.close()
            raise
        return _ClosingText(raw, archive)

    @property
    def gdal_path(self) -> str:
        """The path GDAL opens: the file, or ``/vsizip/<zip>/<member>``."""
        return str(self.path) if self.member is None else f"/vsizip/{self.path}/{self.member}"

    def sidecar(self, suffix: str) -> str | None:
        """Text of the sidecar with ``suffix`` (``.prj``, ``.csvt``) beside the file or its
        member, None when there is none."""
        if self.member is None:
            p = self.path.with_suffix(suffix)
            return p.read_text(errors="replace") if p.exists() else None
        name = str(Path(self.member).with_suffix(suffix))
        with zipfile.ZipFile(self.path) as z:
            if name not in z.namelist():
                return None
            return z.read(name).decode("utf-8", errors="replace")

    def sidecar_crs(self) -> CRS | None:
        """CRS from a ``.prj`` sidecar (WKT1, ESRI WKT or WKT2), None when there is none."""
        text = self.sidecar(".prj")
        if text is None:
            return None
        try:
            return CRS.from_user_input(text.strip())
        except Exception as exc:  # pyproj.exceptions.CRSError and friends
            where = self.path.with_suffix(".prj") if self.member is None else self.path
            raise UnreadableFile(where, f"not a CRS: {first_line(exc)}") from None


class _ClosingText(io.TextIOWrapper):
    """A zip member as text that closes its archive when closed."""

    def __init__(self, raw, archive: zipfile.ZipFile):
        super().__init__(raw, encoding="utf-8-sig", newline="")
        self._archive = archive

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._archive.close()


def zip_member(path: Path, member: str | None = None) -> str:
    """The CSV inside a zip archive: ``member`` when given, else the only ``.csv`` it holds.

    Raises :class:`UnreadableFile` naming the archive and what it holds otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")
                     and not n.startswith("__MACOSX/")]
    except (OSError, *ZIP_ERRORS) as exc:
        raise UnreadableFile(path, first_line(exc)) from None
    shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
    if member is not None:
        if member not in names:
            raise UnreadableFile(path, f"no member '{member}' (holds {shown or 'nothing'})")
        return member
    found = [n for n in names if n.lower().endswith(".csv")]
    if not found:
        raise UnreadableFile(path, f"no CSV inside (holds {shown or 'nothing'})")
    if len(found) > 1:
        raise UnreadableFile(path, f"holds {len(found)} CSV files ({', '.join(found[:4])}); "
                                   "name one as the layer")
    return found[0]


def _read_csvt(src: TextSource, ncols: int) -> list[np.dtype | None] | None:
    text = src.sidecar(".csvt")
    if text is None:
        return None
    try:
        names = next(csv.reader([text.strip()]), [])
    except csv.Error:  # a field beyond the csv module's limit: no GDAL type list
        return None
    if len(names) != ncols:
        return None  # stale sidecar: ignore it rather than mis-type the columns
    out = []
    for t in names:
        t = re.sub(r"\(\d+(\.\d+)?\)", "", t.strip().strip('"').lower())  # drop (width.prec)
        out.append(CSVT_TO_DTYPE.get(t))
    return out


def _sniff(values: list[str]) -> tuple[str, bool]:
    """``('int' | 'float' | 'str', has_empty)`` for the sample values of one column."""
    vals = [v.strip() for v in values]
    full = [v for v in vals if v]
    if not full:
        return "str", True
    empty = len(full) < len(vals)
    if all(v.lstrip("+-").isdigit() for v in full):
        return "int", empty
    try:
        for v in full:
            float(v)
    except ValueError:
        return "str", empty
    return "float", empty


def _header(src: TextSource) -> tuple[str, list[str], list[list[str]]]:
    """Delimiter, column names (an empty name becomes ``field_N`` as in GDAL) and the first
    rows."""
    try:
        with src.open() as f:
            header = f.readline()
            sample = [ln for ln in (f.readline() for _ in range(CSV_SNIFF_ROWS)) if ln.strip()]
    except (OSError, *ZIP_ERRORS) as exc:  # ZIP_ERRORS: also text that is no UTF-8
        raise UnreadableFile(src.path, first_line(exc)) from None
    if not header.strip():
        return ",", [], []
    delim = max(DELIMITERS, key=header.count)
    try:
        names = [n.strip() or f"field_{j + 1}"
                 for j, n in enumerate(next(csv.reader([header], delimiter=delim)))]
        rows = list(csv.reader(sample, delimiter=delim))
    except csv.Error as exc:  # a field longer than 128 KiB
        raise UnreadableFile(src.path, first_line(exc)) from None
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InvalidColumn(src.path, sorted(dup)[0], "appears twice in the header")
    for i, r in enumerate(rows):
        if len(r) != len(names):
            raise UnreadableFile(src.path, f"row {i + 1} has {len(r)} fields, the header "
                                           f"{len(names)}")
    return delim, names, rows


def read_csv_columns(path: Path | TextSource) -> dict[str, np.ndarray]:
    """Every column of a delimited text file, typed (int64/float64/str, or as the ``.csvt``
    sidecar says). Delimiter: ``,`` ``;`` tab or ``|``, whichever the header uses most.

    Integer columns never pass through float64 (which rounds beyond 2**53, and ids such as
    9007199254740993 are that long): they are parsed as int64, kept as text beyond int64's
    range, and a ``.csvt`` ``Integer`` holding a value beyond 32 bits becomes int64."""
    src = path if isinstance(path, TextSource) else TextSource(Path(path))
    delim, names, rows = _header(src)
    if not names:
        return {}
    if not rows:
        return {n: np.empty(0, dtype=np.float64) for n in names}
    declared = _read_csvt(src, len(names)) or [None] * len(names)
    kinds = [_kind(dt, *_sniff([r[j] for r in rows])) for j, dt in enumerate(declared)]
    opts = dict(delimiter=delim, skiprows=1, comments=None, quotechar='"', ndmin=2)
    if None in kinds:  # empty numeric fields in the first rows: loadtxt cannot take them
        return _read_csv_gdal(src, declared, kinds, opts)
    num, txt, ints = ([j for j, k in enumerate(kinds) if k == kind]
                      for kind in ("num", "str", "int"))
    try:
        numbers = _loadtxt(src, usecols=num, dtype=np.float64, **opts) if num else None
        texts = _loadtxt(src, usecols=txt, dtype=str, **opts) if txt else None
        integers = _integer_columns(src, ints, opts)
    except ValueError as exc:
        if "convert" in str(exc):  # an empty field or a word in a numeric column: GDAL copes
            return _read_csv_gdal(src, declared, kinds, opts)
        raise UnreadableFile(src.path, first_line(exc).split(";")[0]) from None
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        dt = declared[j]
        if kinds[j] == "int":
            out[name] = _as_declared(integers[j], dt)
        elif kinds[j] == "num":
            a = np.ascontiguousarray(numbers[:, num.index(j)])
            out[name] = a if dt is None else a.astype(dt)
        else:
            s = texts[:, txt.index(j)]
            if dt is not None and dt.kind == "M":
                out[name] = _as_dates(src, name, s, dt)
            else:
                out[name] = s.astype(object)
    return out


def _kind(declared: np.dtype | None, sniffed: str, empty: bool) -> str | None:
    """How a column is parsed: ``'int'`` (exactly), ``'num'`` (float64), ``'str'``; None for
    numbers with empty fields, which only GDAL's reader takes."""
    if declared is not None:
        return "str" if declared.kind in "OM" else "int" if declared.kind in "biu" else "num"
    if sniffed != "str" and empty:
        return None
    return {"int": "int", "float": "num"}.get(sniffed, "str")


def _as_dates(src: TextSource, name: str, s: np.ndarray, declared: np.dtype) -> np.ndarray:
    """A text column the ``.csvt`` sidecar declares ``Date`` / ``DateTime`` (empty: NaT); a
    value that is no date is an :class:`InvalidColumn` naming it."""
    try:
        return np.where(s == "", "NaT", s).astype(declared)
    except ValueError as exc:
        raise InvalidColumn(src.path, name, "is not a date as its .csvt sidecar says "
                                            f"({first_line(exc)})") from None


def _integer_columns(src: TextSource, cols: list[int], opts: dict) -> dict[int, np.ndarray]:
    """Integer columns by position, parsed straight to int64 (a tenth of a float parse's
    time); a column holding anything else is re-read as text (:func:`_integers`), and one
    that is then no integers either is float64 (a ``ValueError`` for an empty field or a
    word, as for any numeric column)."""
    if not cols:
        return {}
    try:
        a = _loadtxt(src, usecols=cols, dtype=np.int64, **opts)
        return {j: np.ascontiguousarray(a[:, i]) for i, j in enumerate(cols)}
    except ValueError:  # 1.5, 1e3, an empty field, a value beyond int64
        text = _loadtxt(src, usecols=cols, dtype=str, **opts)
    out = {}
    for i, j in enumerate(cols):
        exact = _integers(text[:, i])
        out[j] = exact if exact is not None else text[:, i].astype(np.float64)
    return out


def _integers(text: np.ndarray) -> np.ndarray | None:
    """The exact values of a column of integer literals that may have empty fields: int64
    when it has none and all fit; float64 with NaN where every value is exact as a float;
    else the texts (object, None where empty). None when a value is no integer literal."""
    vals = [v.strip() for v in text.tolist()]
    full = [v for v in vals if v]
    if not all(_INT_RE.fullmatch(v) for v in full):
        return None
    ints = [int(v) for v in full]
    lo, hi = (min(ints), max(ints)) if ints else (0, 0)
    if len(full) == len(vals) and INT64.min <= lo and hi <= INT64.max:
        return np.array(ints, dtype=np.int64)
    if len(full) < len(vals) and -FLOAT_EXACT <= lo and hi <= FLOAT_EXACT:
        return np.array([float(v) if v else np.nan for v in vals], dtype=np.float64)
    return np.array([v or None for v in vals], dtype=object)


def _as_declared(a: np.ndarray, declared: np.dtype | None) -> np.ndarray:
    """An exact integer column in its ``.csvt`` type: booleans, and ``Integer`` (int32) or
    ``Integer(Int16)`` where every value fits; int64 where one does not (GDAL would clamp it),
    and text or floats (values that are no int64) as they are."""
    if declared is None or a.dtype != np.int64:
        return a
    if declared.kind == "b":
        return a != 0
    info = np.iinfo(declared)
    if len(a) and (a.min() < info.min or a.max() > info.max):
        return a
    return a.astype(declared)


def _loadtxt(src: TextSource, **kw) -> np.ndarray:
    if src.member is None:  # a plain file by name: numpy reads it in C
        return np.loadtxt(src.path, encoding="utf-8-sig", **kw)
    with src.open() as f:
        return np.loadtxt(f, **kw)


def _read_csv_gdal(src: TextSource, declared: list[np.dtype | None], kinds: list[str | None],
                   opts: dict) -> dict[str, np.ndarray]:
    """Slow but forgiving: GDAL's CSV driver (empty fields become NaN / None). Its integer
    columns are re-parsed from the text: GDAL clamps a csvt ``Integer`` beyond 32 bits and
    makes an integer column with empty fields float64."""
    try:
        with warnings.catch_warnings():  # the clamped values are replaced below
            warnings.filterwarnings("ignore", "Field .* integer overflow", RuntimeWarning)
            meta, _, _, fields = pyogrio.raw.read(
                src.gdal_path, read_geometry=False, HEADERS="YES", AUTODETECT_TYPE="YES",
                AUTODETECT_SIZE_LIMIT="0", EMPTY_STRING_AS_NULL="YES", KEEP_GEOM_COLUMNS="YES")
    except Exception as exc:
        raise UnreadableFile(src.path, first_line(exc)) from None
    out = {str(n): v for n, v in zip(meta["fields"], fields, strict=True)}
    names = list(out)
    ints = [j for j, (dt, k) in enumerate(zip(declared, kinds, strict=True))
            if (dt is not None and dt.kind in "biu") or k is None or k == "int"]
    if not ints or len(names) != len(kinds):
        return out
    try:
        text = _loadtxt(src, usecols=ints, dtype=str, **opts)
    except ValueError:  # rows GDAL copes with but numpy does not: GDAL's values stand
        return out
    for i, j in enumerate(ints):
        exact = _integers(text[:, i])
        if exact is not None:
            out[names[j]] = _as_declared(exact, declared[j])
    return out
