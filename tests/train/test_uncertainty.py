import numpy as np

from psirel.train.evaluate import uncertainty_md, uncertainty_metrics


def test_std_that_marks_the_errors_ranks_them():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.where(y == 1, 0.8, 0.2).astype(np.float32)
    wrong = rng.random(2000) < 0.2
    p[wrong] = 1 - p[wrong]                              # 20 % mistakes at threshold 0.5
    std = np.where(wrong, 0.2, 0.05) + rng.normal(0, 0.02, 2000)
    u = uncertainty_metrics(y, p, std, 0.5, members=3)
    assert u["error_rate"] == wrong.mean()
    assert u["std_auc_for_errors"] > 0.95
    assert u["error_rate_most_uncertain_fifth"] > 0.8
    assert u["error_rate_least_uncertain_fifth"] < 0.05
    assert f"{u['std_auc_for_errors']:.3f}" in uncertainty_md(u)
    # one member: no spread to rank with
    one = uncertainty_metrics(y, p, np.zeros(2000), 0.5, members=1)
    assert one["std_auc_for_errors"] is None and "undefined" in uncertainty_md(one)
