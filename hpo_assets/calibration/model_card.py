"""The model card: a reliability diagram before/after calibration and a Markdown page of the card's facts."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hpo_assets.calibration.bootstrap import sensitivity_text  # noqa: E402
from hpo_assets.calibration.metrics import Strategy, reliability_bins  # noqa: E402
from hpo_assets.calibration.perfect_calibration import text as perfect_text  # noqa: E402


def reliability_png(y: Any, before: Any, after: Any, title: str, n_bins: int = 10) -> bytes:
    """Two reliability panels (equal-width and equal-mass bins): observed rate vs mean confidence,
    before and after; under them a histogram of the predictions before and after, with the base rate
    marked, so a band squeezed around the base rate (probability collapse) and what calibration did to
    it are visible. Marker area follows the bin's sample count; empty bins are not drawn."""
    fig = plt.figure(figsize=(10, 6.6))
    grid = fig.add_gridspec(2, 2, height_ratios=(3, 1.3))
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    # zoom to where the points are (daily up-move probabilities often stay below 0.3)
    top = max(float(np.max(before)), float(np.max(after)), float(np.mean(y)))
    lim = 1.0 if top > 0.6 else max(0.1, float(np.ceil(top * 1.15 * 10) / 10))
    strategies: tuple[Strategy, Strategy] = ("uniform", "quantile")
    for ax, strategy in zip(axes, strategies, strict=True):
        ax.plot([0, lim], [0, lim], color="0.6", lw=1, ls="--", label="perfect")
        for probs, name, colour in ((before, "before", "tab:red"), (after, "after", "tab:blue")):
            b = reliability_bins(y, probs, n_bins, strategy)
            ax.plot(b.confidence, b.rate, color=colour, lw=1)
            ax.scatter(
                b.confidence,
                b.rate,
                s=12 + 200 * b.count / max(1, b.count.max()),
                color=colour,
                alpha=0.7,
                label=f"{name} ({len(b.count)} bins)",
            )
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed positive rate")
        ax.set_title("equal-width bins" if strategy == "uniform" else "equal-mass bins")
        ax.legend(loc="upper left", fontsize=8)
    hist = fig.add_subplot(grid[1, :])
    edges = np.linspace(0.0, lim, 61).tolist()
    for probs, name, colour in ((before, "before", "tab:red"), (after, "after", "tab:blue")):
        hist.hist(np.clip(probs, 0, lim), bins=edges, color=colour, alpha=0.45, label=f"{name} calibration")
    hist.axvline(float(np.mean(y)), color="black", lw=1, ls=":", label="observed base rate")
    hist.set_xlim(0, lim)
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("days")
    hist.set_title("predictions (a narrow band around the base rate = probability collapse)", fontsize=9)
    hist.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def interval_text(lo: Any, hi: Any) -> str:
    """An interval as the card prints it, "[0.6929, 0.8393]" (the UI metadata shows the same text)."""
    return f"[{_num(lo)}, {_num(hi)}]"


def _iv(m: dict[str, Any], key: str) -> str:
    if m.get(key) is None:
        return "–"
    lo, hi = m.get(f"{key}_lo"), m.get(f"{key}_hi")
    return f"{_num(m[key])} {interval_text(lo, hi)}" if lo is not None else _num(m[key])


def _bins_table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| bin | n | mean p | observed |", "|---|---:|---:|---:|"]
    out += [
        f"| {r['lower']:.3f}–{r['upper']:.3f} | {r['count']} | {r['confidence']:.3f} | {r['rate']:.3f} |"
        for r in rows
    ]
    return out


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (the facts in `card.json`, readable)."""
    t, rec = card["test"], card["trial"]
    lines = [
        f"# Model card: {card['budget']} | {card['horizon']}",
        "",
        f"PatchTST classifier, architecture `{rec['arch']}` ({card['param_count']:,} parameters), "
        f"best COMPLETE trial #{rec['trial_number']} of study `{rec['study_name']}` "
        f"(recorded {rec['objective']} {_num(rec['recorded_value'])}).",
        f"Predicts: label_h{card['horizon_days']} (the price rises at least the label threshold within "
        f"{card['horizon_days']} trading day(s)).",
        "",
        "## Data",
        f"- data span {card['data']['data_start']} .. {card['data']['data_end']}",
        f"- train {card['data']['train_first']} .. {card['data']['train_last']} ({card['data']['n_train']} samples)",
        f"- validation {card['data']['val_first']} .. {card['data']['val_last']} ({card['data']['n_val']} samples)",
        f"- test {card['data']['test_first']} .. {card['data']['test_last']} ({card['data']['n_test']} samples, "
        f"{t['positives']} positive)",
        f"- purge gap {card['data']['purge_gap']} samples between parts",
        "",
        "## Training",
        f"- training parameters: {', '.join(f'{k}={v}' for k, v in rec['train'].items())}; "
        f"max {rec['max_epochs']} epochs, patience {rec['patience']}, early stopping on {rec['objective']}, "
        "best checkpoint restored",
        f"- seeds {card['seeds']}; saved model: seed {card['saved_seed']} (best validation {rec['objective']})",
        f"- reproduction of the trial (seed {rec['seed']}): validation {rec['objective']} "
        f"{_num(card['reproduction']['retrained'])} vs recorded {_num(card['reproduction']['recorded'])} "
        f"(|diff| {_num(card['reproduction']['abs_diff'], 6)}, tolerance {card['reproduction']['tolerance']})",
        "",
        "## Test metrics (saved model)",
        "",
        "| metric | value [95% interval] |",
        "|---|---|",
    ]
    for key in ("auc", "log_loss", "brier", "accuracy"):
        lines.append(f"| {key} | {_iv(t, key)} |")
    spread = card["seed_spread"]
    lines += [
        "",
        f"Test AUC across {len(t['seed_aucs'])} seeds: mean {_num(spread['auc_mean'])}, sd {_num(spread['auc_sd'])}, "
        f"min {_num(spread['auc_min'])}, max {_num(spread['auc_max'])}.",
        f"Intervals: {card['interval_noise']}.",
        *_sensitivity_lines(card.get("bootstrap") or {}),
        "",
        "## Baselines on the same split (test)",
        "",
        "| model | AUC [95%] | log loss [95%] | Brier [95%] |",
        "|---|---|---|---|",
        f"| **this model (calibrated)** | {_iv(card['calibration']['after'], 'auc')} | "
        f"{_iv(card['calibration']['after'], 'log_loss')} | {_iv(card['calibration']['after'], 'brier')} |",
    ]
    for row in card["baselines"]:
        if row["split"] == "test":
            lines.append(
                f"| {row['model']} | {_iv(row, 'auc')} | {_iv(row, 'log_loss')} | {_iv(row, 'brier')} |"
            )
    paired = card.get("vs_baselines") or []
    if paired:
        lines += [
            "",
            "Model minus baseline, test AUC (paired: both scored on the same resampled days):",
            "",
            "| baseline | AUC difference [95%] | verdict |",
            "|---|---|---|",
            *(
                f"| {r['baseline']} | {_num(r['auc_diff'])} [{_num(r['auc_diff_lo'])}, {_num(r['auc_diff_hi'])}] "
                f"| {r['verdict']} |"
                for r in paired
            ),
            "",
            f"Interval: {card.get('vs_baselines_noise', '')}; a verdict only when it excludes 0.",
        ]
    cal = card["calibration"]
    lines += ["", "## Calibration", "", *_selection_lines(cal), ""]
    lines += [
        *(f"> warning: {w}" for w in cal["warnings"]),
        "",
        "| test metric | before | after |",
        "|---|---|---|",
        *(
            f"| {k} | {_iv(cal['before'], k)} | {_iv(cal['after'], k)} |"
            for k in ("ece_width", "ece_mass", "mce_width", "brier", "log_loss", "auc")
        ),
        "",
        *_perfect_lines(cal),
        *_spread_lines(cal),
        "ECE over 10 bins (equal-width / equal-mass); empty bins are skipped. Bins after calibration, "
        "equal-width:",
        "",
        *_bins_table(cal["bins_after_width"]),
        "",
        "Equal-mass:",
        "",
        *_bins_table(cal["bins_after_mass"]),
        "",
        "![reliability](reliability.png)",
        "",
        "## Files",
        "weights.pt (state dict), architecture.json, features.json (input columns; how inputs are "
        "normalised, with the training split's mean/std for a z-score model), calibrator.json, card.json, test_predictions.csv. Load with "
        "`hpo_assets.training.saved_model.load_calibrated_model(folder)`.",
    ]
    return "\n".join(lines) + "\n"


def _sensitivity_lines(boot: dict[str, Any]) -> list[str]:
    sens = boot.get("sensitivity")
    return [f"Block-length sensitivity: {sensitivity_text(sens)}."] if sens else []


def _selection_lines(cal: dict[str, Any]) -> list[str]:
    if "forward_val_log_loss" not in cal:  # a card written before forward selection
        return [
            f"Chosen method: **{cal['chosen']}** (lowest cross-fitted validation log loss, "
            f"{cal.get('folds')} contiguous folds of {cal['n_validation']} validation samples).",
            "",
            "| method | cross-fitted validation log loss |",
            "|---|---|",
            *(f"| {m} | {_num(v)} |" for m, v in cal["cross_fitted_val_log_loss"].items()),
        ]
    fw, vs = cal.get("forward") or {}, cal.get("vs_none") or {}
    lines = [
        f"Chosen method: **{cal['chosen']}**: {cal['rule']}. Fitted on the first {fw.get('fit_days')} and "
        f"scored on the last {fw.get('score_days')} of {cal['n_validation']} validation days "
        f"(purge {fw.get('purge')}).",
    ]
    if vs:
        lines.append(
            f"Best forward method {vs['method']} minus none, mean per-day log loss: {_num(vs['diff'])} "
            f"{interval_text(vs['lo'], vs['hi'])} (block bootstrap, blocks of mean {vs['block']} days)."
        )
    lines += [
        "",
        "| method | forward validation log loss | cross-fitted validation log loss (reference) |",
        "|---|---|---|",
        *(
            f"| {m} | {_num(v)} | {_num((cal.get('cross_fitted_val_log_loss') or {}).get(m))} |"
            for m, v in cal["forward_val_log_loss"].items()
        ),
    ]
    return lines


def _perfect_lines(cal: dict[str, Any]) -> list[str]:
    rows = []
    for side in ("before", "after"):
        for key, ref in ((cal.get(side) or {}).get("perfect_calibration") or {}).items():
            rows.append(f"| {key} | {side} | {perfect_text(ref)} |")
    if not rows:
        return []
    return [
        "What a perfectly calibrated predictor scores on the same predictions. Plug-in ECE is biased "
        "upward on a few hundred days, so the bracket after an ECE above is the bootstrap interval of that "
        "biased statistic, not of the calibration error; an ECE is read as miscalibration only above what "
        "perfect calibration scores (labels simulated y ~ Bernoulli(p), dependent over h-day windows):",
        "",
        "| ECE | predictions | observed: reading (perfect calibration: mean, 95% range; p) |",
        "|---|---|---|",
        *rows,
        "",
    ]


def _spread_lines(cal: dict[str, Any]) -> list[str]:
    rows = []
    for side in ("before", "after"):
        sp = (cal.get(side) or {}).get("spread") or {}
        if sp.get("n"):
            qs = " / ".join(_num(sp.get(k), 3) for k in ("q05", "q25", "q50", "q75", "q95"))
            rows.append(
                f"| {side} | {_num(sp['min'], 3)} | {_num(sp['max'], 3)} | {qs} | "
                f"{_num(sp.get('share_near_base_rate'), 3)} |"
            )
    if not rows:
        return []
    base = ((cal.get("before") or {}).get("spread") or {}).get("base_rate")
    return [
        f"Spread of the test predictions (base rate {_num(base, 3)}; collapse = most predictions within "
        "±0.05 of it):",
        "",
        "| predictions | min | max | 5 / 25 / 50 / 75 / 95% | share within ±0.05 of base rate |",
        "|---|---:|---:|---|---:|",
        *rows,
        "",
    ]


def seed_spread(aucs: list[float | None]) -> dict[str, Any]:
    vals = np.array([a for a in aucs if a is not None], dtype=float)
    if vals.size == 0:
        return {"auc_mean": None, "auc_sd": None, "auc_min": None, "auc_max": None, "n_seeds": 0}
    return {
        "auc_mean": float(vals.mean()),
        "auc_sd": float(vals.std(ddof=1)) if vals.size > 1 else None,
        "auc_min": float(vals.min()),
        "auc_max": float(vals.max()),
        "n_seeds": int(vals.size),
    }
