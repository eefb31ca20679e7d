"""Calibrator chosen the old way (cross-fitted validation log loss) vs forward (fit early, score late, keep
`none` unless the gain is beyond the noise), on the logistic baseline's logits; run by hand, prints figures.

    .venv/bin/python benchmarks/calibration_choice.py

Demo window (2013-07-01..2018-12-31, validation from 2015-10-01, test from 2016-10-01), S&P 500, h1/h3/h5.
For each rule: the method chosen, and the test ECE (equal-width) with what perfect calibration scores on
the same test predictions (mean, 95% range) and the reading.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from hpo_assets.baselines.reference import fit_baselines
from hpo_assets.calibration import calibrators, perfect_calibration
from hpo_assets.data.dataset import prepare_dataset
from hpo_assets.data.features import build_features
from hpo_assets.data.market import load_market
from hpo_assets_tests.conftest import SP500

WINDOW = {"start": "2013-07-01", "end": "2018-12-31", "val_start": "2015-10-01", "test_start": "2016-10-01"}


def main() -> None:
    frame = build_features(load_market(SP500))
    for h in (1, 3, 5):
        data = prepare_dataset(frame, h, **WINDOW)
        fit = next(f for f in fit_baselines(data) if f.model == "logistic")
        z_val, z_test = (logit(np.clip(fit.scores[k], 1e-7, 1 - 1e-7)) for k in ("val", "test"))
        y_val, y_test = data.y[data.split.val].astype(float), data.y[data.split.test].astype(float)
        sel = calibrators.select(z_val, y_val, horizon=h)
        cross = {m: v for m, v in sel.cross_fitted.items() if v is not None}
        old = min(cross, key=lambda m: (cross[m], calibrators.METHODS.index(m)))
        raw = perfect_calibration.text(perfect_calibration.reference(y_test, 1 / (1 + np.exp(-z_test)), h))
        print(f"h{h} (validation {len(y_val)} days, test {len(y_test)}): uncalibrated test ECE {raw}")
        for rule, method in (("cross-fitted (old)", old), ("forward (new)", sel.method)):
            p = calibrators.fit(method, z_val, y_val).predict(z_test)
            ref = perfect_calibration.reference(y_test, p, h)
            print(f"  {rule:<19} {method:<17} test ECE {perfect_calibration.text(ref)}")
        if sel.vs_none:
            v = sel.vs_none
            print(
                f"  forward best {v['method']} minus none: {v['diff']:+.4f} [{v['lo']:+.4f}, {v['hi']:+.4f}]"
            )


if __name__ == "__main__":
    main()
