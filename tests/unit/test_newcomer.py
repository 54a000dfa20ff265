"""What a newcomer meets first: `make run` installs only what running needs, the build
prints no deprecation banner, and the README says what the sandbox keeps."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement

from tests.support import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TEST_TOOLS = {"pytest", "playwright", "axe-playwright-python", "openapi-core", "ruff"}


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_the_licence_is_an_spdx_string_for_a_setuptools_that_reads_it() -> None:
    # A TOML table here makes setuptools print a deprecation banner at every install.
    license_ = PYPROJECT["project"]["license"]
    assert isinstance(license_, str)
    assert canonicalize_license_expression(license_) == "EUPL-1.2"
    [setuptools] = [
        Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")
    ]
    assert setuptools.specifier.contains("77.0.0")
    assert not setuptools.specifier.contains("76.9")


def test_running_needs_no_test_tool() -> None:
    run_extra = names(PYPROJECT["project"]["optional-dependencies"]["run"])
    assert "honcho" in run_extra  # Procfile.dev starts the portal and the sandbox with it
    assert not (names(PYPROJECT["project"]["dependencies"]) | run_extra) & TEST_TOOLS


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """The Makefile and project file in a folder with no .venv, as on a fresh clone."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def planned(folder: Path, target: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(  # noqa: S603
        [make, "-n", "-C", str(folder), target], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_make_run_installs_the_running_extra_only(fresh_copy: Path) -> None:
    installs = [line for line in planned(fresh_copy, "install").splitlines() if " -e " in line]
    assert installs and all(line.endswith("-e '.[run]'") for line in installs)


def test_make_test_adds_the_test_toolchain(fresh_copy: Path) -> None:
    plan = planned(fresh_copy, "install-test")
    assert "-e '.[run]'" in plan
    assert "-e '.[run,test,dev]'" in plan


def test_the_readme_says_how_to_stop_what_resets_and_who_is_linked() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "Ctrl+C" in readme
    assert "back to their first state" in readme
    assert "stays unlinked" in readme
    for identity in ("Marie-Thérèse DUBOIS", "Éloïse NGUYEN", "Amina BENALI"):
        assert identity in readme
