"""The baselines' patch statistics: from the patch cache (patch encoder) or streamed from the
rasters without keeping a patch (shared-map encoder): the same numbers."""

from __future__ import annotations

import numpy as np
from psirel_testing import scene_args

from psirel.features.normalize import fit_normalizer
from psirel.train.data import build_patch_cache, load_inputs
from psirel.train.point_data import build_point_data, patch_stats, streamed_patch_stats


def test_streamed_statistics_equal_the_cached_ones(tiny_scene, tmp_path):
    inputs = load_inputs(*scene_args(tiny_scene)[1::2])
    try:
        c = inputs.cloud
        norm = fit_normalizer(inputs.stack, c.x, c.y, inputs.scalars_raw, inputs.scalar_names)
        patches, unknown = build_patch_cache(inputs, norm, tmp_path / "cache")
        (stats, slope), unknown_streamed = streamed_patch_stats(inputs, norm, chunk=700)
        ref_stats, ref_slope = patch_stats(patches, norm, inputs.stack.pixel_m)
        assert unknown_streamed == unknown
        # the cache holds float16 patches: equal to its rounding
        np.testing.assert_allclose(stats, ref_stats, rtol=2e-3, atol=2e-2)
        np.testing.assert_allclose(slope, ref_slope, rtol=2e-2, atol=0.2)
        a = build_point_data(inputs, None, norm, (stats, slope))
        assert a.patch_stats is stats and a.slope_deg is slope
    finally:
        inputs.stack.close()


def test_a_shared_map_training_keeps_no_patch_cache(tiny_scene, tmp_path, monkeypatch):
    import psirel.train.trainer as trainer
    from psirel.train.loop import TrainSettings

    def refuse(*args, **kwargs):
        raise AssertionError("a shared-map training built the patch cache")

    monkeypatch.setattr(trainer, "build_patch_cache", refuse)
    trainer.train(*scene_args(tiny_scene)[1::2], tmp_path / "m", settings=TrainSettings(
        epochs=1, max_steps_per_epoch=1, batch_size=64, ensemble=1))
    assert (tmp_path / "m" / "model.json").exists()
