"""Logistic baseline on raw feature levels vs on the stationary inputs of `baselines/reference.py`; run by
hand, prints figures (nothing is asserted).

    .venv/bin/python benchmarks/baseline_inputs.py

Demo window (2013-07-01..2018-12-31, validation from 2015-10-01, test from 2016-10-01), S&P 500, h1 and h5;
C chosen on validation log loss for each input set. Printed: validation and test AUC, the test AUC's 95%
block-bootstrap interval, and the paired test-AUC difference stationary - raw (same resampled test days),
plus the share of test days outside the training range (the worst column) for each input set.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hpo_assets.baselines.reference import LOGISTIC_C, stationary_inputs
from hpo_assets.calibration.bootstrap import interval
from hpo_assets.calibration.metrics import auc, logloss
from hpo_assets.data.dataset import prepare_dataset
from hpo_assets.data.features import build_features
from hpo_assets.data.market import load_market
from hpo_assets.stats.bootstrap import auc_influence
from hpo_assets_tests.conftest import SP500

WINDOW = {"start": "2013-07-01", "end": "2018-12-31", "val_start": "2015-10-01", "test_start": "2016-10-01"}


def _fit(x: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray) -> tuple[float, object]:
    best: tuple[float, object, float] | None = None
    for c in LOGISTIC_C:
        m = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x[tr], y[tr])
        loss = logloss(y[va], m.predict_proba(x[va])[:, 1]) or float("inf")
        if best is None or loss < best[0]:
            best = (loss, m, c)
    assert best is not None
    return best[2], best[1]


def main() -> None:
    frame = build_features(load_market(SP500))
    for h in (1, 5):
        data = prepare_dataset(frame, h, **WINDOW)
        tr, va, te = data.split.train, data.split.val, data.split.test
        y = data.y.astype(float)
        sets = {
            "raw levels": np.asarray(data.x, float),
            "stationary": stationary_inputs(data.x, data.feature_names)[0],
        }
        test_p = {}
        for name, x in sets.items():
            c, m = _fit(x, y, tr, va)
            pv, pt = m.predict_proba(x[va])[:, 1], m.predict_proba(x[te])[:, 1]  # type: ignore[attr-defined]
            test_p[name] = pt
            yt = y[te]
            iv = interval(
                lambda i, pt=pt, yt=yt: auc(yt[i], pt[i]), len(te), h, series=[auc_influence(yt, pt)]
            )
            out = ((x[te] > x[tr].max(axis=0)) | (x[te] < x[tr].min(axis=0))).mean(axis=0).max()
            print(f"h{h} {name:<11} C={c:<6} val AUC {auc(y[va], pv):.3f}  test AUC {iv['value']:.3f} "
                  f"[{iv['lo']:.3f}, {iv['hi']:.3f}] (block {iv['block']})  worst column outside training range "
                  f"{out:.1%} of test days")  # fmt: skip
        yt, a, b = y[te], test_p["stationary"], test_p["raw levels"]

        def diff(i: np.ndarray, yt: np.ndarray = yt, a: np.ndarray = a, b: np.ndarray = b) -> float | None:
            u, v = auc(yt[i], a[i]), auc(yt[i], b[i])
            return None if u is None or v is None else u - v

        d = interval(diff, len(te), h, series=[auc_influence(yt, a) - auc_influence(yt, b)])
        print(f"h{h} stationary - raw, test AUC (paired): {d['value']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")


if __name__ == "__main__":
    main()
