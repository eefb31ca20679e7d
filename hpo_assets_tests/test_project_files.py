"""Project housekeeping that protects users' work: `make clean` never deletes the studies."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hpo_assets import settings


def _dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-n", target], cwd=settings.PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_clean_keeps_the_studies_and_clean_studies_is_explicit() -> None:
    clean = _dry_run("clean")
    assert "outputs" in clean and ".hpo" not in clean
    assert "rm -rf .hpo" in _dry_run("clean-studies")
