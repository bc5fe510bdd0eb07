"""The artefacts `make dist` builds: the wheel installs where users' Python runs, and the sdist builds the same wheel.

`make dist` builds into dist/ (or $FERROFLAG_DIST) an sdist, an abi3 wheel linked against glibc 2.17's symbols,
and dist/from-sdist/ a second wheel built from the sdist's tarball alone; then it runs this file. Without a
dist/ these tests skip, except under CI (`CI` set), where a missing build is a failure: CI runs `make dist`
before the tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("FERROFLAG_DIST", ROOT / "dist"))
# The oldest glibc that manylinux2014 promises (CentOS 7); no symbol of the wheel may need a newer one.
MANYLINUX2014_GLIBC = (2, 17)
WHEEL_NAME = re.compile(
    r"^ferroflag-(?P<version>[^-]+)-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$",
)


def _one(pattern: str, where: Path) -> Path:
    found = sorted(where.glob(pattern))
    if not found:
        message = f"no {pattern} in {where}: run `make dist` first"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert len(found) == 1, f"expected one {pattern} in {where}, found {[p.name for p in found]}"
    return found[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return _one("ferroflag-*.whl", DIST)


@pytest.fixture(scope="module")
def sdist() -> Path:
    return _one("ferroflag-*.tar.gz", DIST)


@pytest.fixture(scope="module")
def wheel_from_sdist() -> Path:
    return _one("ferroflag-*.whl", DIST / "from-sdist")


@pytest.fixture(scope="module")
def extension(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's native module, unpacked."""
    out = tmp_path_factory.mktemp("wheel")
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if re.fullmatch(r"ferroflag/_ferroflag\.[^/]*\.so", n)]
        archive.extract(name, out)
    return out / name


def test_the_wheel_is_one_abi3_wheel_for_manylinux2014(wheel: Path):
    match = WHEEL_NAME.match(wheel.name)
    assert match, wheel.name
    assert match["python"] == "cp310"
    assert match["abi"] == "abi3"  # one wheel for every CPython from 3.10 on
    platforms = set(match["platform"].split("."))
    assert "manylinux_2_17_x86_64" in platforms, platforms
    assert "manylinux2014_x86_64" in platforms, platforms


def test_auditwheel_finds_the_wheel_consistent_with_manylinux_2_17(wheel: Path):
    shown = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    consistent = re.search(r'is consistent with the following platform tag:\s*"([^"]+)"', shown)
    assert consistent, shown
    tag = consistent[1]
    found = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", tag)
    assert found, tag
    assert (int(found[1]), int(found[2])) <= MANYLINUX2014_GLIBC, shown


def test_no_symbol_needs_a_glibc_newer_than_2_17(extension: Path):
    dynamic_symbols = subprocess.run(
        ["objdump", "-T", str(extension)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)\b", dynamic_symbols)
    versions = {tuple(int(part) for part in version.split(".")) for version in found}
    assert versions, "objdump -T shows no GLIBC symbol versions at all: not a glibc-linked module?"
    assert max(versions) <= MANYLINUX2014_GLIBC, sorted(versions)[-5:]


def test_the_wheel_carries_the_package_its_types_and_license(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for expected in (
        "ferroflag/__init__.py",
        "ferroflag/_ferroflag.pyi",
        "ferroflag/py.typed",
        "ferroflag/schema.json",
        "ferroflag/django/apps.py",
    ):
        assert expected in names, expected
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
    assert any(re.search(r"\.dist-info/(licenses/)?LICENSE$", n) for n in names), sorted(names)[-8:]
    assert not [n for n in names if n.startswith(("tests/", "src/", "benches/"))]
    assert "Requires-Python: >=3.10" in metadata
    for extra in ("fastapi", "django", "openfeature"):
        assert f"Provides-Extra: {extra}" in metadata, extra


def test_the_sdist_holds_what_a_from_scratch_build_needs_and_no_build_output(sdist: Path):
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for expected in ("pyproject.toml", "Cargo.toml", "Cargo.lock", "LICENSE", "README.md", "src/lib.rs"):
        assert expected in names, expected
    assert "python/ferroflag/__init__.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd")) or n.startswith(("target/", ".venv/"))]


def test_the_sdist_builds_the_same_wheel(wheel: Path, wheel_from_sdist: Path):
    assert wheel_from_sdist.name == wheel.name
    with zipfile.ZipFile(wheel) as shipped, zipfile.ZipFile(wheel_from_sdist) as rebuilt:
        assert sorted(rebuilt.namelist()) == sorted(shipped.namelist())


def test_the_wheel_installs_and_works_in_a_clean_venv(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # --no-index: the wheel alone (the core needs no other package), nothing from the network.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
        check=True,
        timeout=120,
    )
    flags = tmp_path / "flags.json"
    flags.write_text(
        json.dumps(
            {
                "format": 2,
                "flags": [
                    {
                        "key": "beta",
                        "enabled": True,
                        "rules": [{"conditions": [{"attribute": "plan", "operator": "in", "values": ["pro"]}]}],
                    }
                ],
            }
        )
    )
    probe = (
        "import json, sys, ferroflag\n"
        "evaluator = ferroflag.FlagEvaluator()\n"
        "evaluator.update_json(open(sys.argv[1]).read())\n"
        "print(json.dumps({'file': ferroflag.__file__, 'version': ferroflag.__version__,\n"
        "  'pro': evaluator.is_enabled('beta', ferroflag.EvalContext('u', plan='pro')),\n"
        "  'free': evaluator.is_enabled('beta', ferroflag.EvalContext('u', plan='free'))}))\n"
    )
    # Run from the temp dir with a clean environment, so that nothing from the checkout can be imported.
    clean_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    out = subprocess.run(
        [str(python), "-c", probe, str(flags)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env,
    )
    answer = json.loads(out.stdout)
    assert Path(answer["file"]).is_relative_to(venv), answer["file"]
    assert answer["version"] == WHEEL_NAME.match(wheel.name)["version"]  # type: ignore[index]
    assert (answer["pro"], answer["free"]) == (True, False)
    validated = subprocess.run(
        [str(venv / "bin" / "ferroflag"), "validate", str(flags)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
