"""The tests mirror the source tree (issue 14): `api/<package>/<module>.py` is tested by
`tests/<package>/test_<module>.py` or `tests/<package>/test_<module>_<concern>.py`, and the
gateway's packages have no module without one. Test files live beside their package's tests,
not in a catch-all `tests/unit/`."""

from __future__ import annotations

from pathlib import Path

# The packages whose every module the fast layer (`pytest -m "not triton"`) covers.
MIRRORED = ("streaming", "inference", "flags", "jobs", "core")


def untested_modules(repo_root: Path, packages: tuple[str, ...] = MIRRORED) -> list[str]:
    """`api/<package>/<module>.py` for every module with no test file of its own."""
    missing = []
    for package in packages:
        tests = repo_root / "tests" / package
        for module in sorted((repo_root / "api" / package).glob("*.py")):
            if module.stem == "__init__":
                continue
            own = tests / f"test_{module.stem}.py"
            by_concern = list(tests.glob(f"test_{module.stem}_*.py"))
            if not own.is_file() and not by_concern:
                missing.append(f"api/{package}/{module.name}")
    return missing


def test_no_test_files_are_left_in_tests_unit(repo_root: Path) -> None:
    left = sorted(
        p.relative_to(repo_root).as_posix() for p in repo_root.glob("tests/unit/**/test_*.py")
    )
    listed = "\n".join(left)
    assert left == [], f"move these beside their package's tests (tests/<package>/):\n{listed}"


def test_every_gateway_module_has_its_own_test_file(repo_root: Path) -> None:
    missing = untested_modules(repo_root)
    listed = "\n".join(missing)
    assert missing == [], f"modules without tests/<package>/test_<module>[_*].py:\n{listed}"


def test_the_check_finds_a_module_without_tests_and_accepts_a_concern_file(
    tmp_path: Path,
) -> None:
    for name in ("__init__.py", "alpha.py", "beta.py", "gamma.py"):
        (tmp_path / "api" / "pkg").mkdir(parents=True, exist_ok=True)
        (tmp_path / "api" / "pkg" / name).write_text("")
    (tmp_path / "tests" / "pkg").mkdir(parents=True)
    (tmp_path / "tests" / "pkg" / "test_alpha.py").write_text("")
    (tmp_path / "tests" / "pkg" / "test_beta_limits.py").write_text("")
    (tmp_path / "tests" / "pkg" / "test_gammas.py").write_text("")  # not gamma's: no separator

    assert untested_modules(tmp_path, ("pkg",)) == ["api/pkg/gamma.py"]
