"""Every study of a journal folder as one Optuna storage, so one optuna-dashboard shows them all.

A folder storage keeps one journal file per study (storage.py); optuna-dashboard serves one storage, so
its compare-studies screen would see a single study. `CombinedStorage` puts the files' storages side by
side: each inner study and trial id `i` of file `k` (of `n`) is `i * n + k` here, a bijection that keeps
ids stable while the files grow. Reads and trial/attribute writes (the dashboard's notes) go to the file
that holds the study; creating or deleting a study is refused (that is the study run's business).
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState


class CombinedStorage(BaseStorage):
    """Several storages as one; ids are interleaved (inner id * len(storages) + index)."""

    def __init__(self, storages: Sequence[BaseStorage]) -> None:
        if not storages:
            raise ValueError("CombinedStorage: no storage to combine")
        self._inner = list(storages)

    # id mapping
    def _split(self, outer: int) -> tuple[BaseStorage, int]:
        n = len(self._inner)
        return self._inner[outer % n], outer // n

    def _join(self, index: int, inner: int) -> int:
        return inner * len(self._inner) + index

    def _index(self, storage: BaseStorage) -> int:
        return next(k for k, s in enumerate(self._inner) if s is storage)

    def _trial(self, index: int, trial: FrozenTrial) -> FrozenTrial:
        out = copy.copy(trial)
        out._trial_id = self._join(index, trial._trial_id)
        return out

    # studies
    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        raise NotImplementedError("a combined storage is for viewing: studies are created by their study run")

    def delete_study(self, study_id: int) -> None:
        raise NotImplementedError("a combined storage is for viewing: delete a study in its own storage")

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        storage, inner = self._split(study_id)
        storage.set_study_user_attr(inner, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        storage, inner = self._split(study_id)
        storage.set_study_system_attr(inner, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        for k, storage in enumerate(self._inner):
            try:
                return self._join(k, storage.get_study_id_from_name(study_name))
            except KeyError:
                continue
        raise KeyError(f"no study named {study_name!r}")

    def get_study_name_from_id(self, study_id: int) -> str:
        storage, inner = self._split(study_id)
        return storage.get_study_name_from_id(inner)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        storage, inner = self._split(study_id)
        return storage.get_study_directions(inner)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        storage, inner = self._split(study_id)
        return storage.get_study_user_attrs(inner)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        storage, inner = self._split(study_id)
        return storage.get_study_system_attrs(inner)

    def get_all_studies(self) -> list[FrozenStudy]:
        studies = []
        for k, storage in enumerate(self._inner):
            for study in storage.get_all_studies():
                out = copy.copy(study)
                out._study_id = self._join(k, study._study_id)
                studies.append(out)
        return sorted(studies, key=lambda s: s.study_name)

    # trials
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        storage, inner = self._split(study_id)
        return self._join(self._index(storage), storage.create_new_trial(inner, template_trial))

    def set_trial_param(
        self, trial_id: int, param_name: str, param_value_internal: float, distribution: BaseDistribution
    ) -> None:
        storage, inner = self._split(trial_id)
        storage.set_trial_param(inner, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        storage, inner = self._split(study_id)
        found = storage.get_trial_id_from_study_id_trial_number(inner, trial_number)
        return self._join(self._index(storage), found)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        storage, inner = self._split(trial_id)
        return storage.set_trial_state_values(inner, state, values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        storage, inner = self._split(trial_id)
        storage.set_trial_intermediate_value(inner, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        storage, inner = self._split(trial_id)
        storage.set_trial_user_attr(inner, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        storage, inner = self._split(trial_id)
        storage.set_trial_system_attr(inner, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        storage, inner = self._split(trial_id)
        return self._trial(self._index(storage), storage.get_trial(inner))

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        storage, inner = self._split(study_id)
        k = self._index(storage)
        return [self._trial(k, t) for t in storage.get_all_trials(inner, deepcopy=deepcopy, states=states)]


def dashboard_storage(spec: str) -> tuple[BaseStorage, list[str], list[str]]:
    """(storage, study names, problems): every readable study of `spec` in one storage.

    A URL is already one storage (its own, opened as a reader); a journal folder becomes a
    CombinedStorage of its files. A damaged file is one problem message, the others are still served.
    """
    from hpo_assets.locations import is_url
    from hpo_assets.search.storage import StorageMissing, find_studies, open_storage

    found, problems = find_studies(spec)
    names = sorted({name for name, _ in found})
    if is_url(spec):
        return open_storage(spec, "", create=False), names, problems
    files = sorted({source for _, source in found})
    if not files:
        raise StorageMissing(f"storage {spec!r} holds no readable study")
    return CombinedStorage([open_storage(f, "", create=False) for f in files]), names, problems
