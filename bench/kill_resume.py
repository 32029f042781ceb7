"""``kill -9`` at random moments: does a rerun of the same ``psirel predict`` always resume to the
uninterrupted run's output, byte for byte?

    .venv/bin/python bench/kill_resume.py --runs 20 --seed 0

Generates a scene (``--points``, seed 5) and trains a tiny model (one epoch of one step; the
patch encoder unless ``--encoder shared-map``) into OUT once, then runs an uninterrupted
reference per mode: the two stages (``predict`` with ``--chunk-points`` / ``--block-points``,
2,000 points: 4 chunks, 100 blocks) and Dask tiles (``predict_tiled``, ``local:--workers``,
``--tile-m 640``: 9 tiles), each a separate process writing CSV. Each of ``--runs`` runs then
picks a mode and a moment uniformly within that reference's wall time, starts the same
command with a fixed work dir in its own process group, sends SIGKILL to the group at that
moment (the driver and its Dask workers), reads the work dir's manifest to tell where it was
killed, reruns the command to the end and compares the output files' bytes with the
reference's. Also counts leftovers: anything beside the output but the file and its side cars,
and temporary folders of atomic writes (``.*.tmp``) in the work dir.

Writes ``OUT/summary.json`` (with every run) and prints the summary without the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

DRIVER = textwrap.dedent('''
    """One psirel predict run as configured by the JSON file argv[1]; prints its summary."""
    import json
    import sys
    import time
    from pathlib import Path

    if __name__ == "__main__":  # Dask's LocalCluster spawns workers that re-import this file
        cfg = json.loads(Path(sys.argv[1]).read_text())
        t0 = time.perf_counter()
        common = dict(work_dir=cfg["work_dir"], threads=1, chunk_points=cfg["chunk_points"],
                      block_points=cfg["block_points"])
        if cfg["dask"]:
            from psirel.infer.distributed import predict_tiled

            s = predict_tiled(cfg["model"], *cfg["inputs"], cfg["out"], dask=cfg["dask"],
                              tile_m=cfg["tile_m"], **common)
            facts = {"tiles": s["tiles"]}
        else:
            from psirel.infer.pipeline import predict

            s = predict(cfg["model"], *cfg["inputs"], cfg["out"], **common)
            facts = {"chunks": s["chunks"], "blocks": s["blocks"]}
        facts["seconds"] = time.perf_counter() - t0
        print("SUMMARY " + json.dumps(facts), flush=True)
''')
RUN_TIMEOUT_S = 600.0
OUTPUT_NAMES = ["pred.csv", "pred.csvt", "pred.prj"]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "n/a"


def prepare(out: Path, n_points: int, encoder: str) -> tuple[Path, list[str]]:
    """The scene and the tiny model (made once, kept in ``out``)."""
    from psirel.scene.generate import generate_scene

    scene = out / f"scene_{n_points}"
    if not (scene / "scene.json").exists():
        generate_scene(scene, n_points=n_points, seed=5)
    inputs = [str(scene / n) for n in ("points.gpkg", "dem.tif", "lulc.tif", "amplitude.tif")]
    model = out / f"model_{encoder}_{n_points}"
    if not (model / "model.json").exists():
        from psirel.train.loop import TrainSettings
        from psirel.train.trainer import train

        train(*inputs, model, settings=TrainSettings(
            encoder=encoder, epochs=1, max_steps_per_epoch=1, batch_size=128,
            val_fraction=0.1, ensemble=2))
    return model, inputs


class Runs:
    """Starts the driver: ``folder/out/pred.csv``, work dir ``folder/work``."""

    def __init__(self, root: Path, model: Path, inputs: list[str], args):
        self.root, self.model, self.inputs, self.args = root, model, inputs, args
        self.script = root / "drive.py"
        self.script.write_text(DRIVER)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                    "DASK_TEMPORARY_DIRECTORY": str(root / "dask-tmp")}

    def start(self, folder: Path, mode: str) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        cfg = folder / "run.json"
        cfg.write_text(json.dumps({
            "model": str(self.model), "inputs": self.inputs,
            "out": str(folder / "out" / "pred.csv"), "work_dir": str(folder / "work"),
            "dask": f"local:{self.args.workers}" if mode == "dask" else None,
            "tile_m": self.args.tile_m, "chunk_points": self.args.chunk_points,
            "block_points": self.args.block_points}))
        log = open(folder / f"log-{time.monotonic_ns()}.txt", "w")
        try:
            return subprocess.Popen([sys.executable, str(self.script), str(cfg)], stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env, cwd=folder,
                                    start_new_session=True)
        finally:
            log.close()

    def complete(self, folder: Path, mode: str) -> tuple[dict, float]:
        t0 = time.perf_counter()
        proc = self.start(folder, mode)
        try:
            rc = proc.wait(RUN_TIMEOUT_S)
        finally:
            kill_group(proc)
        wall = time.perf_counter() - t0
        log = max(folder.glob("log-*.txt"), key=lambda p: p.stat().st_mtime_ns).read_text()
        if rc != 0:
            raise SystemExit(f"run in {folder} failed (rc {rc}):\n{log[-4000:]}")
        line = [ln for ln in log.splitlines() if ln.startswith("SUMMARY ")][-1]
        return json.loads(line.removeprefix("SUMMARY ")), wall

    def kill_after(self, folder: Path, mode: str, delay_s: float) -> tuple[bool, float]:
        """Start a run and SIGKILL its group ``delay_s`` later; (killed, seconds it ran)."""
        t0 = time.perf_counter()
        proc = self.start(folder, mode)
        try:
            while time.perf_counter() - t0 < delay_s:
                if proc.poll() is not None:
                    break
                time.sleep(0.002)
        finally:
            killed = proc.poll() is None
            kill_group(proc)
        if not killed and proc.returncode != 0:
            raise SystemExit(f"run in {folder} failed (rc {proc.returncode})")
        return killed, time.perf_counter() - t0


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def where_killed(work: Path, mode: str, totals: dict) -> tuple[str, dict]:
    """The stage the killed run was in, from its manifest, and what it had on record."""
    if mode == "dask":
        m = read_json(work / "tiles.json")
        if m is None:
            return "startup", {"tiles": 0}
        n = len(m["done"])
        return ("tiles" if n < totals["tiles"] else "write"), {"tiles": n}
    m = read_json(work / "manifest.json")
    if m is None:
        return "startup", {"chunks": 0, "blocks": 0}
    c, b = len(m["stage1"]["done"]), len(m["stage2"]["done"])
    stage = "stage1" if c < totals["chunks"] else "stage2" if b < totals["blocks"] else "write"
    return stage, {"chunks": c, "blocks": b}


def output_files(folder: Path) -> dict[str, bytes]:
    out = folder / "out"
    return {p.name: p.read_bytes() if p.is_file() else b"<folder>" for p in out.iterdir()}


def work_litter(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob(".*.tmp"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="draws the modes and the moments")
    ap.add_argument("--out", type=Path, default=Path("bench/results/kill_resume"))
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--encoder", choices=["patch", "shared-map"], default="patch")
    ap.add_argument("--modes", default="two-stage,dask",
                    help="comma-separated: two-stage, dask")
    ap.add_argument("--workers", type=int, default=2, help="Dask local workers")
    ap.add_argument("--tile-m", type=float, default=640.0)
    ap.add_argument("--chunk-points", type=int, default=500)
    ap.add_argument("--block-points", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep every run's folder")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"two-stage", "dask"}:
        ap.error(f"--modes {args.modes}: choose among two-stage, dask")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    load_before = uptime()
    t_start = time.perf_counter()
    model, inputs = prepare(out, args.points, args.encoder)
    runs_dir = out / "runs"
    runner = Runs(out, model, inputs, args)

    refs = {}
    for mode in modes:
        folder = runs_dir / f"reference-{mode}"
        if folder.exists():
            _rmtree(folder)
        summary, wall = runner.complete(folder, mode)
        totals = ({"tiles": summary["tiles"]["total"]} if mode == "dask" else
                  {"chunks": summary["chunks"]["total"], "blocks": summary["blocks"]["total"]})
        refs[mode] = {"files": output_files(folder), "wall_s": wall, "totals": totals}
        print(f"reference {mode}: {wall:.1f} s, {totals}", flush=True)

    rng = random.Random(args.seed)
    per_run = []
    for i in range(args.runs):
        mode = rng.choice(modes)
        ref = refs[mode]
        delay = rng.uniform(0.0, ref["wall_s"])
        folder = runs_dir / f"run-{i:03d}"
        if folder.exists():
            _rmtree(folder)
        killed, kill_s = runner.kill_after(folder, mode, delay)
        stage, kept = where_killed(folder / "work", mode, ref["totals"]) if killed else \
            ("finished", {})
        summary, resume_s = runner.complete(folder, mode)
        got = output_files(folder)
        identical = all(got.get(n) == d for n, d in ref["files"].items())
        beside = sorted(set(got) - set(OUTPUT_NAMES))
        if mode == "dask":
            computed = {"tiles": summary["tiles"]["computed"]}
        else:
            computed = {"chunks": summary["chunks"]["computed"],
                        "blocks": summary["blocks"]["computed"]}
        recomputed_only_missing = all(computed[k] == ref["totals"][k] - kept.get(k, 0)
                                      for k in computed) if killed else None
        row = {"run": i, "mode": mode, "kill_at_s": round(delay, 3), "killed": killed,
               "stage": stage, "kept": kept, "computed_on_rerun": computed,
               "recomputed_only_missing": recomputed_only_missing,
               "identical": identical, "left_beside_output": beside,
               "left_in_work_dir": work_litter(folder / "work"),
               "kill_run_s": round(kill_s, 2), "rerun_s": round(resume_s, 2),
               "seconds": round(kill_s + resume_s, 2)}
        per_run.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep and identical and not beside:
            _rmtree(folder)

    stages: dict[str, int] = {}
    for r in per_run:
        stages[r["stage"]] = stages.get(r["stage"], 0) + 1
    killed_runs = [r for r in per_run if r["killed"]]
    summary = {
        "runs": len(per_run),
        "modes": {m: sum(r["mode"] == m for r in per_run) for m in modes},
        "killed_in_stage": stages,
        "all_identical": all(r["identical"] for r in per_run),
        "identical": sum(r["identical"] for r in per_run),
        "rerun_computed_only_missing": sum(bool(r["recomputed_only_missing"])
                                           for r in killed_runs),
        "rerun_computed_less_than_total": sum(
            any(v < refs[r["mode"]]["totals"][k] for k, v in r["computed_on_rerun"].items())
            for r in killed_runs),
        "killed": len(killed_runs),
        "left_beside_output": sum(bool(r["left_beside_output"]) for r in per_run),
        "left_in_work_dir": sum(bool(r["left_in_work_dir"]) for r in per_run),
        "mean_seconds": mean([r["seconds"] for r in per_run]),
        "mean_seconds_by_mode": {m: mean([r["seconds"] for r in per_run if r["mode"] == m])
                                 for m in modes},
        "mean_rerun_seconds": mean([r["rerun_s"] for r in per_run]),
        "reference_seconds": {m: round(refs[m]["wall_s"], 2) for m in modes},
        "totals": {m: refs[m]["totals"] for m in modes},
        "settings": {"points": args.points, "encoder": args.encoder, "seed": args.seed,
                     "workers": args.workers, "tile_m": args.tile_m,
                     "chunk_points": args.chunk_points, "block_points": args.block_points},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "uptime_before": load_before,
                    "uptime_after": uptime()},
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    (out / "summary.json").write_text(json.dumps({**summary, "per_run": per_run}, indent=2)
                                      + "\n")
    print(json.dumps(summary, indent=2))


def mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 2) if xs else None


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
