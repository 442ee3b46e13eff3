"""environment.yml (conda users), constraints.txt (make) and pyproject.toml must agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> dict[str, Requirement]:
    """pyproject's dependencies plus its test extra, by normalised name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["test"]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def environment_pins() -> dict[str, Version]:
    """environment.yml's pip packages (options such as '-e .' aside) and their pinned versions."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    [pip] = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    pins = {}
    for line in pip:
        if line.startswith("-"):
            continue
        requirement = Requirement(line)
        [spec] = list(requirement.specifier)
        assert spec.operator == "==", f"environment.yml should pin {line} with =="
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def constraint_pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_environment_names_match_pyproject():
    assert set(environment_pins()) == set(pyproject_requirements())


def test_environment_pins_satisfy_pyproject_ranges():
    requirements = pyproject_requirements()
    for name, version in environment_pins().items():
        assert requirements[name].specifier.contains(version, prereleases=True), (
            f"environment.yml pins {name}=={version}, outside pyproject's {requirements[name]}"
        )


def test_environment_pins_equal_the_constraints():
    constraints = constraint_pins()
    for name, version in environment_pins().items():
        assert constraints.get(name) == version, f"{name}: environment.yml {version}, constraints.txt {constraints.get(name)}"


def test_constraints_pin_torch_without_a_local_build_label():
    torch = constraint_pins()[canonicalize_name("torch")]
    assert torch.local is None  # 'torch==2.13.0' takes the CPU wheel on disk; '+cpu' would not resolve
    assert "bnnlib" not in constraint_pins()


def test_environment_python_matches_requires_python():
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    [python] = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert SpecifierSet(project["requires-python"]).contains(python.split("=")[1])
