"""Which studies exist: one per budget (model/budgets.yaml) x horizon (defaults.yaml), keyed `2M|h1`.

Adding a budget to budgets.yaml or a horizon to defaults.yaml adds its studies; nothing else lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpo_assets.model.budgets import named_budgets
from hpo_assets.search.study_settings import StudyConfigError
from hpo_assets.settings import settings

UID_ATTR = "study_uid"  # a study's identity beyond its name, set once when it is created (trials/identity.py)


def study_budgets() -> list[str]:
    return named_budgets()


def study_horizons() -> list[str]:
    """Horizon labels `h1`, `h3`, ... from the `data.horizons` trading days."""
    return [f"h{int(h)}" for h in settings()["data"]["horizons"]]


def valid_keys() -> list[str]:
    return [f"{b}|{h}" for b in study_budgets() for h in study_horizons()]


def feature_tier(n_features: int) -> str:
    """The feature-set label studies carry: `a<n>` = OHLCV plus n indicators (the bundled 25 -> `a20`)."""
    return f"a{n_features - 5}"


@dataclass(frozen=True)
class StudyPartition:
    budget: str
    horizon: str
    horizon_days: int

    @property
    def study_name(self) -> str:
        return f"hpo-{self.budget}-{self.horizon}"

    @property
    def key(self) -> str:
        return f"{self.budget}|{self.horizon}"


def transfer_study_names(budgets: list[str], part: StudyPartition) -> list[str]:
    """The studies a warm start reads: the given budgets at the partition's horizon; a bad budget is one message."""
    others = [b for b in study_budgets() if b != part.budget]
    for budget in budgets:
        if budget not in others:
            raise StudyConfigError(f"transfer_from: {budget!r} is not another budget; choose from {others}")
    return [StudyPartition(b, part.horizon, part.horizon_days).study_name for b in dict.fromkeys(budgets)]


def parse_partition(key: Any) -> StudyPartition:
    """`2M|h1` (or a MultiPartitionKey) -> budget "2M", horizon "h1", 1 day; anything else is one clear error."""
    dims = getattr(key, "keys_by_dimension", None)
    if dims is None:
        parts = str(key).split("|")
        if len(parts) != 2:
            raise StudyConfigError(
                f"partition key {str(key)!r} must read budget|horizon; valid keys: {', '.join(valid_keys())}"
            )
        dims = {"budget": parts[0], "horizon": parts[1]}
    budget, horizon = dims.get("budget", ""), dims.get("horizon", "")
    budgets, horizons = study_budgets(), study_horizons()
    valid = f"valid keys: {', '.join(valid_keys())}"
    if budget not in budgets:
        raise StudyConfigError(
            f"partition key {str(key)!r}: budget {budget!r} is not one of {budgets}; {valid}"
        )
    if horizon not in horizons:
        raise StudyConfigError(
            f"partition key {str(key)!r}: horizon {horizon!r} is not one of {horizons}; {valid}"
        )
    return StudyPartition(budget, horizon, int(horizon[1:]))


def study_attrs(part: StudyPartition, data: Any, patch_len: int, stride: int) -> dict[str, Any]:
    """What a study records about itself (user_attrs): partition, feature set, label definition, data window,
    split and shape; the trial table's provenance columns are read from these."""
    split = data.split
    return {
        "budget": part.budget,
        "horizon": part.horizon,
        "horizon_days": part.horizon_days,
        "tier": feature_tier(data.n_features),
        "n_features": data.n_features,
        "feature_set": ",".join(data.feature_names),
        "context": data.context,
        "patch_len": patch_len,
        "stride": stride,
        "label_mode": data.label_mode,
        "label_threshold": data.label_threshold,
        "data_start": str(data.dates[0]),
        "data_end": str(data.dates[-1]),
        "split_kind": split.kind,
        "val_start": split.details.get("val_start"),
        "test_start": split.details.get("test_start"),
        "n_train": len(split.train),
        "n_val": len(split.val),
        "val_positives": int((data.y[split.val] == 1).sum()),
    }
