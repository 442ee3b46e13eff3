"""The publishing workflow (.github/workflows/book.yml): it runs on a push to main and by hand,
sets up Python 3.11, keys the cache of fits on the engine's code hash, runs exactly the README's
two commands, and deploys _build/html with the official Pages actions."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def workflow() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())


def readme_commands() -> list[str]:
    """The commands of the README's "The two commands" block, without their comments."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def run_lines(flow: dict) -> list[str]:
    return [line.strip() for job in flow["jobs"].values() for step in job["steps"] if "run" in step
            for line in step["run"].splitlines() if line.strip()]


def uses(flow: dict) -> dict[str, dict]:
    return {step["uses"].split("@")[0]: step for job in flow["jobs"].values() for step in job["steps"]
            if "uses" in step}


def test_it_runs_on_a_push_to_main_and_by_hand():
    triggers = workflow()[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers


def test_its_build_commands_are_the_readmes_two():
    commands = readme_commands()
    assert commands == ["make book", "make test"]
    made = [line for line in run_lines(workflow()) if line.startswith("make ") and line != "make venv"]
    assert sorted(made) == sorted(commands) and made == ["make test", "make book"]  # the tests first


def test_it_sets_up_python_311_and_keys_the_cache_on_the_engine_hash():
    flow = workflow()
    steps = uses(flow)
    assert str(steps["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert "actions/checkout" in steps
    assert any("bnnlib cache-key" in line for line in run_lines(flow))
    for action in ("actions/cache/restore", "actions/cache/save"):
        assert steps[action]["with"]["path"] == "_build/cache"
        assert "steps.engine.outputs.hash" in steps[action]["with"]["key"]


def test_it_deploys_the_html_with_the_official_pages_actions():
    flow = workflow()
    steps = uses(flow)
    assert steps["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert {"actions/configure-pages", "actions/deploy-pages"} <= set(steps)
    assert flow["permissions"]["pages"] == "write" and flow["permissions"]["id-token"] == "write"
    assert flow["jobs"]["deploy"]["environment"]["name"] == "github-pages"
    assert flow["jobs"]["deploy"]["needs"] == "build"
