"""``psirel predict --baseline NAME``: the API's output and quick-look from the command line;
options that only mean something for the network are refused in one line."""

import numpy as np
import pyogrio
import pytest
from psirel_testing import scene_args

from psirel.baselines import BASELINES
from psirel.cli import main
from psirel.infer.baseline_predict import predict_baseline
from psirel.model_dir import load_card


def run(argv, capsys):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_writes_what_the_api_writes_with_a_quicklook(tiny_model, tiny_scene, tmp_path,
                                                          capsys):
    out = tmp_path / "nc.gpkg"
    code, stdout, err = run(["predict", "--model", tiny_model, *scene_args(tiny_scene),
                             "--out", out, "--baseline", "neighbour_consistency"], capsys)
    assert code == 0, err
    assert "scored by the baseline neighbour_consistency" in stdout
    assert "3,000 points" in stdout
    ref = tmp_path / "api.csv"
    predict_baseline(tiny_model, *scene_args(tiny_scene)[1::2], ref,
                     baseline="neighbour_consistency")
    got = pyogrio.read_dataframe(out)
    want = pyogrio.read_dataframe(ref)
    np.testing.assert_array_equal(got["reliability"].to_numpy(np.float32),
                                  want["reliability"].to_numpy(np.float32))
    thr = load_card(tiny_model).baseline("neighbour_consistency")["threshold_tuned"]
    np.testing.assert_array_equal(got["reliable_pred"].to_numpy(),
                                  got["reliability"].to_numpy() >= np.float32(thr))
    assert (tmp_path / "nc.gpkg.quicklook" / "quicklook.png").stat().st_size > 0
    assert (tmp_path / "nc.qml").exists()


@pytest.mark.parametrize("extra, refused", [
    (["--dask", "local"], "--dask"),
    (["--strategy", "naive"], "--strategy naive"),
    (["--backend", "torch"], "--backend torch"),
    (["--precision", "int8"], "--precision int8"),
    (["--backend", "torch", "--precision", "int8"], "--backend torch, --precision int8"),
])
def test_network_options_are_refused_in_one_line(extra, refused, tiny_model, tiny_scene,
                                                 tmp_path, capsys):
    code, _, err = run(["predict", "--model", tiny_model, *scene_args(tiny_scene), "--out",
                        tmp_path / "o.gpkg", "--baseline", "coherence_threshold", *extra],
                       capsys)
    assert code == 2
    assert err == (f"error: --baseline coherence_threshold scores in one process without the "
                   f"network: drop {refused}\n")
    assert list(tmp_path.iterdir()) == []


def test_unknown_baseline_lists_the_known_ones(tiny_scene, tmp_path, capsys):
    code, _, err = run(["predict", "--model", tmp_path / "none", *scene_args(tiny_scene),
                        "--out", tmp_path / "o.gpkg", "--baseline", "random_forest"], capsys)
    assert code == 2
    assert err == ("error: --baseline random_forest: unknown baseline; choose one of "
                   f"{', '.join(BASELINES)}\n")
    code, out, _ = run(["predict", "--help"], capsys)
    flat = " ".join(out.replace("│", " ").split())
    assert code == 0 and "--baseline" in flat
    assert all(name in flat for name in BASELINES)
