"""Budgets mean parameters: every space is non-empty, varied, and within tolerance; `hpo-assets space`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpo_assets.cli import main
from hpo_assets.model.budgets import (
    BudgetConfigError,
    budget_label,
    budget_space,
    named_budgets,
    parse_budget,
)
from hpo_assets.model.params import count_parameters


@pytest.mark.parametrize("label", named_budgets())
def test_every_budget_space_is_varied_and_within_tolerance(label: str) -> None:
    budget = parse_budget(label)
    space = budget_space(label)
    assert len({e.arch.d_model for e in space}) >= 3
    assert len({e.arch.n_layers for e in space}) >= 3
    for entry in space:
        assert abs(entry.param_count / budget - 1) <= 0.25
        assert entry.arch.d_model % entry.arch.n_heads == 0
        assert entry.param_count == count_parameters(entry.arch, 25)
    assert space == sorted(space)


def test_tolerance_narrows_the_space() -> None:
    wide, narrow = budget_space("20M"), budget_space("20M", tolerance=0.05)
    assert 0 < len(narrow) < len(wide)
    assert all(abs(e.param_count / 20e6 - 1) <= 0.05 for e in narrow)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2M", 2_000_000),
        ("20m", 20_000_000),
        ("2B", 2_000_000_000),
        ("500K", 500_000),
        ("1.5M", 1_500_000),
        (2_000_000, 2_000_000),
        (" 200M ", 200_000_000),
    ],
)
def test_parse_budget(text: str | int, expected: int) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("bad", ["2X", "", "-2M", "0", "M", "1.5", True, None, 2.5])
def test_parse_budget_rejects_non_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budget(bad)  # type: ignore[arg-type]


def test_budget_label_round_trips() -> None:
    assert [budget_label(parse_budget(b)) for b in named_budgets()] == ["200K", "2M", "20M", "200M", "2B"]
    assert budget_label(1_500_000) == "1.5M"


def test_impossible_budget_and_bad_tolerance_are_named() -> None:
    with pytest.raises(ValueError, match="no configured architecture"):
        budget_space(100)
    with pytest.raises(ValueError, match="tolerance"):
        budget_space("2M", tolerance=1.5)


def test_malformed_budget_config_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "budgets.yaml"
    bad.write_text(
        "tolerance: 0.25\ndefault:\n  d_model: [64, -1]\n  n_layers: [2]\n  n_heads: [2]\n  d_ff_ratio: [4]\n"
    )
    with pytest.raises(BudgetConfigError, match=r"default\.d_model"):
        budget_space("2M", config_path=bad)
    with pytest.raises(BudgetConfigError, match="does not exist"):
        budget_space("2M", config_path=tmp_path / "missing.yaml")


def test_cli_space_json_parses_and_counts_are_within_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["space", "2M", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["budget"] == "2M"
    rows = payload["architectures"]
    assert rows and len(rows) == len(budget_space("2M"))
    assert all(abs(r["param_count"] / 2_000_000 - 1) <= 0.25 for r in rows)


def test_cli_space_table_and_bad_budget(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["space", "2M"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("budget 2M:") and "param_count" in out
    assert main(["space", "2X"]) == 2
    assert "2X" in capsys.readouterr().err


def test_named_budget_overrides_the_default_choices(tmp_path: Path) -> None:
    cfg = tmp_path / "budgets.yaml"
    cfg.write_text(
        "tolerance: 0.25\n"
        "default:\n  d_model: [64, 96, 128, 192, 256]\n  n_layers: [1, 2, 4, 8, 16]\n  n_heads: [4]\n  d_ff_ratio: [4]\n"
        "budgets:\n  2M:\n    d_model: [128]\n"
    )
    assert {e.arch.d_model for e in budget_space("2M", config_path=cfg)} == {128}
    assert len({e.arch.d_model for e in budget_space("1M", config_path=cfg)}) > 1
