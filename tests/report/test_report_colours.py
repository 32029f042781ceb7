import numpy as np
import pytest

from psirel.report.colours import (
    ABOVE_SPAN,
    BELOW_SPAN,
    NO_SCORE_RGBA,
    check_threshold,
    reliability_rgba,
    rgba_to_hex,
    scale_position,
)


def test_positions_jump_at_the_threshold():
    pos = scale_position(np.array([0.0, 0.2, 0.4, 0.4 - 1e-9, 0.4 + 1e-9, 0.7, 1.0, np.nan]), 0.4)
    np.testing.assert_allclose(pos[:7], [BELOW_SPAN[0], BELOW_SPAN[0] + 0.5 * (BELOW_SPAN[1]
                                         - BELOW_SPAN[0]), ABOVE_SPAN[0], BELOW_SPAN[1],
                                         ABOVE_SPAN[0], ABOVE_SPAN[0] + 0.5 * (ABOVE_SPAN[1]
                                         - ABOVE_SPAN[0]), ABOVE_SPAN[1]], atol=1e-6)
    assert np.isnan(pos[7])


def test_colours_red_below_blue_above_black_for_nan():
    rgba = reliability_rgba(np.array([[0.05, 0.44], [0.45, np.nan]]), 0.45)
    assert rgba.shape == (2, 2, 4)
    red0, red1, blue, nan = rgba[0, 0], rgba[0, 1], rgba[1, 0], rgba[1, 1]
    assert red0[0] > 0.6 and red0[2] < 0.2  # dark red
    assert red1[0] > 0.9 and red1[2] < red1[0] - 0.3  # light orange just below
    assert blue[2] > 0.8 and blue[0] < blue[2] - 0.1  # light blue at the threshold
    np.testing.assert_array_equal(nan, NO_SCORE_RGBA)
    assert rgba_to_hex(reliability_rgba(np.array([1.0]), 0.5)[0]) == "#313695"
    assert rgba_to_hex(reliability_rgba(np.array([0.0]), 0.5)[0]) == "#a50026"


def test_extreme_thresholds_and_validation():
    assert np.all(reliability_rgba(np.array([0.0, 1.0]), 0.0)[:, 2] > 0.5)  # all kept: blue
    assert np.all(reliability_rgba(np.array([0.0, 0.99]), 1.0)[:, 0] > 0.6)  # all flagged: red
    assert check_threshold(0.3) == 0.3
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            check_threshold(bad)
