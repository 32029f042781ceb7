"""``kill -9`` of a real ``psirel predict`` process, then the same command again: the output is
byte for byte the uninterrupted run's, and the rerun computed only what the killed run had not
recorded (stage-1 chunks, stage-2 blocks, Dask tiles). Nothing temporary is left beside the
output.

Each run is a separate Python process (a small driver script calling the Python API with small
chunks and blocks, so that a 2,000-point scene has 4 chunks, 100 blocks and 9 tiles) in its own
process group; the test polls the work dir (its manifest, or the temporary folder of an atomic
write) and sends SIGKILL to the whole group (the driver and its Dask workers) at the moment
chosen. ``bench/kill_resume.py`` does the same at random moments.

The last two tests kill a run inside an atomic write (of the output, of the manifest): the
output is right and the killed writer's temporary folder is swept by the next write of the
same target (:func:`psirel.io.atomic.remove_stale_temporaries`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

OPTS = {"chunk_points": 500, "block_points": 20}  # 2,000 points: 4 chunks, 100 blocks
TILE_M = 640.0  # the scene spans ~1.9 km: 3 × 3 tiles with a 300 m halo
POLL_S = 0.005
KILL_WAIT_S = 180.0  # longest wait for the moment to kill (a busy machine)
RUN_TIMEOUT_S = 300.0

def _bench_driver() -> str:
    """The driver script of ``bench/kill_resume.py`` (one copy for the bench and the test)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "kill_resume.py"
    spec = importlib.util.spec_from_file_location("psirel_bench_kill_resume", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DRIVER


DRIVER = _bench_driver()


class Runner:
    """Starts the driver on ``trained``'s scene: ``start(folder, dask)`` → a process writing
    ``folder/out/pred.csv`` with the work dir ``folder/work`` (fixed: a rerun resumes), or with
    ``default_work_dir`` the one psirel picks (``folder/out/.psirel-work-pred.csv``)."""

    def __init__(self, trained, root: Path):
        self.trained, self.root = trained, root
        self.script = root / "drive.py"
        self.script.write_text(DRIVER)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                    "DASK_TEMPORARY_DIRECTORY": str(root / "dask-tmp")}

    def start(self, folder: Path, dask: str | None,
              default_work_dir: bool = False) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        cfg = folder / "run.json"
        cfg.write_text(json.dumps({
            "model": str(self.trained.model), "inputs": [str(p) for p in self.trained.inputs],
            "out": str(folder / "out" / "pred.csv"),
            "work_dir": None if default_work_dir else str(folder / "work"),
            "dask": dask, "tile_m": TILE_M, **OPTS}))
        log = open(folder / f"log-{time.monotonic_ns()}.txt", "w")
        try:  # its own session: a SIGKILL to the group also ends the Dask workers
            return subprocess.Popen([sys.executable, str(self.script), str(cfg)], stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env, cwd=folder,
                                    start_new_session=True)
        finally:
            log.close()

    def complete(self, folder: Path, dask: str | None, **kw) -> dict:
        """Run to the end; the driver's summary."""
        proc = self.start(folder, dask, **kw)
        try:
            rc = proc.wait(RUN_TIMEOUT_S)
        finally:
            _kill_group(proc)
        log = _last_log(folder)
        assert rc == 0, log[-4000:]
        line = [ln for ln in log.splitlines() if ln.startswith("SUMMARY ")][-1]
        return json.loads(line.removeprefix("SUMMARY "))

    def kill_when(self, folder: Path, dask: str | None, ready: Callable[[Path], bool],
                  poll_s: float = POLL_S, **kw) -> bool:
        """Start the run and SIGKILL its process group once ``ready(folder)``; False when the
        run ended first (a moment that short can be missed on a busy machine).

        The group is stopped (SIGSTOP) when ``ready`` first holds and killed only if it still
        holds then, so the kill lands exactly in that state (e.g. while a temporary folder of
        an atomic write exists); else it continues (SIGCONT) and polling goes on."""
        proc = self.start(folder, dask, **kw)
        deadline = time.monotonic() + KILL_WAIT_S
        try:
            while True:
                if ready(folder):
                    _stop_group(proc)
                    if ready(folder):
                        break
                    os.killpg(proc.pid, signal.SIGCONT)
                if proc.poll() is not None:
                    assert proc.returncode == 0, _last_log(folder)[-4000:]
                    return False
                assert time.monotonic() < deadline, "the moment to kill never came"
                time.sleep(poll_s)
        finally:
            _kill_group(proc)
        assert proc.returncode == -signal.SIGKILL
        return True


def _last_log(folder: Path) -> str:
    return max(folder.glob("log-*.txt"), key=lambda p: p.stat().st_mtime_ns).read_text()


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGSTOP the run's group and wait until its driver is stopped (or gone)."""
    try:
        os.killpg(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        return
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:  # the state follows the command name, which is in parentheses
            if stat.read_text().rsplit(")", 1)[1].split()[0] in "TtZX":
                return
        except (OSError, IndexError):  # no /proc (not Linux), or the process is gone
            time.sleep(0.05)
            return
        time.sleep(0.0005)


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)


def manifest(work: Path, name: str) -> dict | None:
    try:
        return json.loads((work / name).read_text())
    except (OSError, ValueError):  # not written yet (it is replaced atomically, never torn)
        return None


def done(work: Path, stage: str) -> int:
    """Finished chunks (``stage1``), blocks (``stage2``) or tiles (``tiles``) on record."""
    m = manifest(work, "tiles.json" if stage == "tiles" else "manifest.json")
    if m is None:
        return 0
    return len(m["done"]) if stage == "tiles" else len(m[stage]["done"])


def output_files(folder: Path) -> dict[str, bytes]:
    """Every entry beside the output (hidden temporaries included), with its bytes."""
    out = folder / "out"
    return {p.name: p.read_bytes() if p.is_file() else b"<folder>" for p in out.iterdir()}


@pytest.fixture(scope="module")
def runner(trained, tmp_path_factory) -> Runner:
    return Runner(trained, tmp_path_factory.mktemp("kill_resume"))


@pytest.fixture(scope="module")
def reference(runner, tmp_path_factory) -> Callable[[str | None], tuple[dict, dict]]:
    """``reference(dask)`` → (summary, output files) of an uninterrupted run, once a module."""
    cache: dict = {}

    def get(dask: str | None) -> tuple[dict, dict]:
        if dask not in cache:
            folder = tmp_path_factory.mktemp("reference")
            summary = runner.complete(folder, dask)
            cache[dask] = summary, output_files(folder)
        return cache[dask]

    return get


def check_same_output(folder: Path, ref_files: dict[str, bytes]) -> None:
    """The output, its side cars and nothing else (no temporary file or folder) beside it."""
    got = output_files(folder)
    assert sorted(got) == sorted(ref_files) == ["pred.csv", "pred.csvt", "pred.prj"]
    for name, data in ref_files.items():
        assert got[name] == data, f"{name} differs from the uninterrupted run's"


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_kill_9_during_a_stage_then_the_same_command_resumes(stage, runner, reference,
                                                             tmp_path):
    ref, ref_files = reference(None)
    n_chunks, n_blocks = ref["chunks"]["total"], ref["blocks"]["total"]
    assert (n_chunks, n_blocks) == (4, 100)
    work = tmp_path / "work"

    assert runner.kill_when(tmp_path, None, lambda f: done(f / "work", stage) >= 1)
    chunks_kept, blocks_kept = done(work, "stage1"), done(work, "stage2")
    if stage == "stage1":
        assert 1 <= chunks_kept < n_chunks and blocks_kept == 0
    else:
        assert chunks_kept == n_chunks and 1 <= blocks_kept < n_blocks
    assert not any((tmp_path / "out").iterdir())  # nothing written yet, not even in part

    s = runner.complete(tmp_path, None)
    assert s["chunks"]["total"] == n_chunks and s["blocks"]["total"] == n_blocks
    assert s["chunks"]["computed"] == n_chunks - chunks_kept  # only what was not recorded
    assert s["blocks"]["computed"] == n_blocks - blocks_kept
    assert s["chunks"]["computed"] + s["blocks"]["computed"] < n_chunks + n_blocks
    check_same_output(tmp_path, ref_files)
    assert done(work, "stage1") == n_chunks and done(work, "stage2") == n_blocks  # kept


def test_kill_9_during_dask_tiles_then_the_same_command_resumes(runner, reference, tmp_path):
    pytest.importorskip("distributed")
    ref, ref_files = reference("local:2")
    n_tiles = ref["tiles"]["total"]
    assert n_tiles == 9 and ref["tiles"]["computed"] == n_tiles

    assert runner.kill_when(tmp_path, "local:2", lambda f: done(f / "work", "tiles") >= 1)
    kept = done(tmp_path / "work", "tiles")
    assert 1 <= kept < n_tiles
    assert not any((tmp_path / "out").iterdir())

    s = runner.complete(tmp_path, "local:2")
    assert s["tiles"]["total"] == n_tiles
    assert s["tiles"]["computed"] == n_tiles - kept < n_tiles
    check_same_output(tmp_path, ref_files)


# ------------------------------------------------------------- the moments of an atomic write
def writing(folder: Path, name: str) -> bool:
    """Whether ``folder / name`` is being written: its temporary file exists in the hidden
    folder of :func:`psirel.io.atomic.atomic_path`."""
    return folder.is_dir() and any((d / name).exists() for d in folder.glob(f".{name}.*.tmp"))


def test_kill_9_while_the_output_is_written(runner, reference, tmp_path):
    _, ref_files = reference(None)
    out = tmp_path / "out"
    for _ in range(5):  # everything is on record after the first try: reruns go straight to
        if runner.kill_when(tmp_path, None, lambda f: writing(out, "pred.csv"),
                            poll_s=0.0005):  # the write, which a busy poller may miss
            break
        for f in out.iterdir():
            f.unlink()
    else:
        pytest.fail("never killed inside the output's atomic write")
    assert not (out / "pred.csv").exists()  # the half-written file never shows

    s = runner.complete(tmp_path, None)
    assert s["chunks"]["computed"] == 0 and s["blocks"]["computed"] == 0
    check_same_output(tmp_path, ref_files)


def test_kill_9_during_a_manifest_write_in_the_default_work_dir(runner, reference, tmp_path):
    _, ref_files = reference(None)
    wd = tmp_path / "out" / ".psirel-work-pred.csv"
    for _ in range(5):
        if runner.kill_when(tmp_path, None, lambda f: writing(wd, "manifest.json"),
                            poll_s=0.0005, default_work_dir=True):
            break
    else:
        pytest.fail("never killed inside a manifest write")

    runner.complete(tmp_path, None, default_work_dir=True)
    check_same_output(tmp_path, ref_files)  # the default work dir is removed after success
