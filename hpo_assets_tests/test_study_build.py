"""One function builds a study from settings, a partition key and prepared data; checks come before data."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo_assets.data.market import default_market_path, load_market
from hpo_assets.search.build import build_study, prepared_for, study_space
from hpo_assets.search.study_settings import StudyConfigError, study_settings


def _no_data(part):
    raise AssertionError(f"data of {part.key} loaded before the settings were checked")


@pytest.mark.parametrize(
    ("given", "key", "needle"),
    [
        ({"parametrization": "mu-p"}, "2M|h1", "parametrization 'mu-p'"),
        ({"transfer_from": ["2M"]}, "2M|h1", "transfer_from: '2M' is not another budget"),
        ({"storage": "mongodb://localhost/x"}, "2M|h1", "unsupported scheme 'mongodb'"),
        ({}, "3M|h1", "budget '3M'"),
    ],
)
def test_bad_settings_fail_before_any_data_is_read(tmp_path: Path, given, key, needle) -> None:
    cfg = study_settings("demo", **given)
    with pytest.raises(ValueError, match=needle):
        build_study(cfg, key, _no_data, storage=cfg.storage or str(tmp_path))


def test_a_built_study_has_the_settings_space_trainer_and_recorded_protocol(tmp_path: Path) -> None:
    cfg = study_settings("demo", architectures=["d384-L1-H8-F1536", "d512-L1-H8-F1024"], seed=7)
    data = prepared_for(load_market(default_market_path()), 3, cfg)
    asked = []
    runner = build_study(
        cfg, "2M|h3", data, storage=str(tmp_path), device_for=lambda d: asked.append(d) or "cpu"
    )
    assert asked == [cfg.device] and runner.device == "cpu"
    assert runner.study_name == "hpo-2M-h3" and runner.data is data
    assert [a.label for a in runner.space.archs] == cfg.architectures
    assert runner.space == study_space("2M", data, cfg) and runner.space.max_epochs == cfg.max_epochs
    assert runner.options.n_trials == cfg.n_trials and runner.options.epochs_config == cfg.max_epochs
    assert runner.trainer.seed == 7 and runner.trainer.max_epochs == cfg.max_epochs
    attrs = runner.attrs
    assert (attrs["horizon_days"], attrs["seed"], attrs["max_epochs"], attrs["patience"]) == (3, 7, 3, 2)
    assert attrs["n_train"] == len(data.split.train) and attrs["parametrization"] == "standard"
    assert runner.warm_start is None


def test_study_settings_name_the_bad_field() -> None:
    for given, needle in [
        ({"n_trials": 0}, "n_trials must be a whole number >= 1, got 0"),
        ({"n_trials": "5"}, "n_trials must be a whole number, got '5'"),
        ({"epochs": 3}, "unknown field 'epochs'"),
        ({"cpu_threads": -1}, "cpu_threads must be 0"),
    ]:
        with pytest.raises(StudyConfigError, match=needle):
            study_settings(**given)


def test_the_dagster_config_is_the_study_settings_plus_profile() -> None:
    """A study setting is declared once: the Launchpad's fields, defaults and descriptions are StudySettings'."""
    from hpo_assets.defs.assets.studies import HpoStudyConfig
    from hpo_assets.search.study_settings import DEFAULTS, StudySettings

    fields = HpoStudyConfig.model_fields
    assert list(fields) == ["profile", *StudySettings.model_fields]
    for name, info in StudySettings.model_fields.items():
        assert fields[name].annotation == info.annotation, name
        assert fields[name].description == info.description, name
        assert fields[name].get_default(call_default_factory=True) == getattr(DEFAULTS, name), name


def test_a_dataclass_gives_its_chosen_fields_to_a_config_that_dagster_runs() -> None:
    """config_from on a dataclass: types, defaults and descriptions carried; a Dagster run reads them."""
    import dataclasses

    import dagster as dg

    from hpo_assets.defs.config import config_from

    @dataclasses.dataclass(frozen=True)
    class Knobs:
        rounds: int = dataclasses.field(default=3, metadata={"description": "How many rounds."})
        rate: float = 0.5
        hidden: int = 7

    config = config_from(Knobs, "KnobsConfig", __name__, include=["rounds", "rate"])
    assert list(config.model_fields) == ["rounds", "rate"]
    assert config.model_fields["rounds"].description == "How many rounds."
    seen = []

    def knob_user(config) -> None:
        seen.append(Knobs(**config.model_dump()))

    knob_user.__annotations__ = {"config": config, "return": None}  # this module's annotations are strings
    run = dg.materialize([dg.asset(knob_user)], run_config={"ops": {"knob_user": {"config": {"rounds": 5}}}})
    assert run.success and seen == [Knobs(rounds=5, rate=0.5)]
    with pytest.raises(ValueError, match=r"no field\(s\) \['nope'\]"):
        config_from(Knobs, "Bad", __name__, include=["nope"])
