"""Budget, horizon and tier read from a study or folder name, because files' own metadata can lie."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BUDGET = re.compile(r"^(\d+(?:\.\d+)?)([kmbKMB])$")
_HORIZON = re.compile(r"^[hH](\d+)$")
_TIER = re.compile(r"^[aA](\d+)$")
_THRESHOLD = re.compile(r"threshold[_\-]?(\d+(?:\.\d+)?)pct", re.IGNORECASE)


@dataclass(frozen=True)
class StudyName:
    """What a study name says: each part null when the name does not say it."""

    budget: str | None
    horizon: str | None
    tier: str | None
    label_threshold: float | None = None  # `threshold_1pct` -> 0.01


def parse_study_name(name: str) -> StudyName:
    """Parse names like `hpo-2M-h1`, `hpo_2m_1_a50`, `phase6a_2M_h1_threshold_1pct`.

    Tokens are split on `_`, `-` and `.`; a budget token reads `<number><K|M|B>`; the horizon is `h<n>`
    or a bare integer right after the budget token; the tier is `a<n>`.
    """
    tokens = [t for t in re.split(r"[_\-./]", name) if t]
    budget = horizon = tier = None
    budget_at = -1
    for i, tok in enumerate(tokens):
        if budget is None and (m := _BUDGET.match(tok)):
            budget = m.group(1) + m.group(2).upper()
            budget_at = i
        elif horizon is None and (m := _HORIZON.match(tok)):
            horizon = f"h{int(m.group(1))}"
        elif tier is None and (m := _TIER.match(tok)):
            tier = f"a{int(m.group(1))}"
    if horizon is None and 0 <= budget_at < len(tokens) - 1 and tokens[budget_at + 1].isdigit():
        horizon = f"h{int(tokens[budget_at + 1])}"
    m = _THRESHOLD.search(name)
    return StudyName(budget, horizon, tier, float(m.group(1)) / 100 if m else None)


def normalize_horizon(value: object) -> str | None:
    """`1`, `"1"`, `"h1"` -> `"h1"`; anything else -> None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"h{value}"
    text = str(value).strip()
    if text.isdigit():
        return f"h{int(text)}"
    m = _HORIZON.match(text)
    return f"h{int(m.group(1))}" if m else None


def normalize_budget(value: object) -> str | None:
    """`"2m"`, `"2M"` -> `"2M"`; anything else -> None."""
    if value is None:
        return None
    m = _BUDGET.match(str(value).strip())
    return m.group(1) + m.group(2).upper() if m else None
