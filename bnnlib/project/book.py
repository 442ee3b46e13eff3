"""The book as a project: its chapters (from ``_toc.yml``), its profiles (``book/params/*.yml``),
the parameters each chapter declares, merged for one chapter, and the models each chapter fits.

This is what the runner, a chapter's frame and the run registry all need to know about the
book, and nothing about executing it.

Profiles are ``book/params/<name>.yml``::

    description: one line
    common:    {data_source: synthetic, ...}   # offered to every chapter
    chapters:  {ensembles: {epochs: 30}}       # per chapter; must be names the chapter declares

In a string value, ``{chapter}`` stands for the chapter's name (``_build/results/{chapter}``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.evaluate.study import ModelSpec
from bnnlib.studies import architecture, burn_eras, diagnostics, ensembles, target_hypotheses, uncertainty

TOC = "_toc.yml"
PARAMS_DIR = Path("book") / "params"


# --------------------------------------------------------------------------- the project


def find_root(start: Path | None = None) -> Path:
    """The project folder: the nearest folder at or above `start` (default: the current
    folder) holding _toc.yml and book/params, else the checkout bnnlib was installed from."""
    here = Path(start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / TOC).is_file() and (folder / PARAMS_DIR).is_dir():
            return folder
    raise BnnlibError(
        f"no book project found at or above {here} ({TOC} and {PARAMS_DIR}/ missing); "
        "run bnnlib from the repository root"
    )


def _root(root: Path | str | None) -> Path:
    return find_root() if root is None else Path(root).resolve()


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its name (the file stem) and its jupytext source."""

    name: str
    source: Path  # book/<name>.py
    notebook: Path  # book/<name>.ipynb, the executed twin the book renders


def list_chapters(root: Path | str | None = None) -> list[Chapter]:
    """The chapters in _toc.yml order: the root page and every `file` entry below it that has a
    jupytext .py source (a plain .md entry is a static page, not executed)."""
    root = _root(root)
    toc = _read_yaml(root / TOC, "the table of contents")
    if not isinstance(toc, dict) or "root" not in toc:
        raise BnnlibError(f"{root / TOC} has no 'root:' entry; see jupyterbook.org's _toc.yml format")
    chapters, seen = [], set()
    for entry in [str(toc["root"]), *_toc_files(toc)]:
        stem = Path(entry)
        if stem.suffix in (".py", ".ipynb", ".md"):
            stem = stem.with_suffix("")
        source = root / stem.parent / f"{stem.name}.py"
        if source.is_file():
            if stem.name in seen:
                raise BnnlibError(f"{TOC} lists two chapters named {stem.name!r}; rename one file")
            seen.add(stem.name)
            chapters.append(Chapter(stem.name, source, source.with_suffix(".ipynb")))
        elif not (root / stem.parent / f"{stem.name}.md").is_file():
            raise BnnlibError(
                f"{TOC} lists {entry!r}, but neither {stem}.py nor {stem}.md exists; "
                "add the file or remove the entry"
            )
    return chapters


def _toc_files(node: Any) -> list[str]:
    """Every `file` entry below the toc's root, depth first, in order."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                if isinstance(child, dict) and "file" in child:
                    found.append(str(child["file"]))
                found.extend(_toc_files(child))
    return found


def get_chapter(name: str, root: Path | str | None = None) -> Chapter:
    """The chapter called `name`, or a BnnlibError listing the chapters."""
    chapters = {c.name: c for c in list_chapters(root)}
    if name not in chapters:
        raise unknown_name("chapter", name, chapters)
    return chapters[name]


# --------------------------------------------------------------------------- profiles


def list_profiles(root: Path | str | None = None) -> list[str]:
    """The names of the profiles in book/params/."""
    return sorted(p.stem for p in (_root(root) / PARAMS_DIR).glob("*.yml"))


def load_profile(name: str, root: Path | str | None = None) -> dict:
    """The profile `name` as {'description', 'common', 'chapters'}, with its shape checked."""
    root = _root(root)
    path = root / PARAMS_DIR / f"{name}.yml"
    if not path.is_file():
        raise unknown_name("profile", name, list_profiles(root))
    data = _read_yaml(path, f"profile {name!r}") or {}
    if not isinstance(data, dict):
        raise BnnlibError(f"{path} must be a mapping with keys description, common, chapters")
    extra = set(data) - {"description", "common", "chapters"}
    if extra:
        raise BnnlibError(
            f"{path} has unknown keys {sorted(extra)}; a profile has only description, common, chapters"
        )
    common = data.get("common") or {}
    chapters = data.get("chapters") or {}
    if not isinstance(common, dict) or not isinstance(chapters, dict):
        raise BnnlibError(f"{path}: 'common' and 'chapters' must be mappings (name: value)")
    for chapter, block in chapters.items():
        if block is not None and not isinstance(block, dict):
            raise BnnlibError(f"{path}: chapters.{chapter} must be a mapping of parameters, e.g. {{}}")
    return {
        "description": str(data.get("description", "")),
        "common": dict(common),
        "chapters": {str(k): dict(v or {}) for k, v in chapters.items()},
    }


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BnnlibError(f"{what} {path} does not exist; run bnnlib from the repository root") from None
    except yaml.YAMLError as error:
        raise BnnlibError(f"{what} {path} is not valid YAML: {error}") from None


# --------------------------------------------------------------------------- parameters


def parse_overrides(pairs: list[list[str]] | None) -> dict:
    """`-p NAME VALUE` pairs as a dict, each VALUE read as YAML ('3' -> 3, 'null' -> None,
    '["laplace"]' -> a list, anything else a string)."""
    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        if len(pair) != 2:
            raise BnnlibError(f"a parameter is NAME VALUE, got {pair!r}; e.g. -p epochs 3")
        name, text = pair
        if not str(name).isidentifier():
            raise BnnlibError(f"parameter name {name!r} is not a Python name; e.g. -p epochs 3")
        if name in overrides:
            raise BnnlibError(f"parameter {name!r} is given twice; pass each -p NAME once")
        try:
            overrides[name] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise BnnlibError(
                f"the value of {name} ({text!r}) is not valid YAML ({error.__class__.__name__}); "
                "quote strings that contain ':' or brackets, e.g. -p name \"'a: b'\""
            ) from None
    return overrides


def declared_parameters(notebook) -> dict[str, Any]:
    """The names assigned in the chapter's cell tagged `parameters`, with their defaults
    (None where a default is not a literal). Empty when the chapter has no such cell."""
    for cell in notebook.cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError as error:
                raise BnnlibError(f"the parameters cell is not valid Python: {error}") from None
            names: dict[str, Any] = {}
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
                )
                for target in targets:
                    if isinstance(target, ast.Name):
                        try:
                            names[target.id] = ast.literal_eval(node.value)
                        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                            names[target.id] = None
            return names
    return {}


def chapter_parameters(
    chapter: str,
    profile: Mapping,
    declared: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    runner: Mapping[str, Any] | None = None,
    profile_name: str = "?",
) -> dict:
    """What papermill injects: the profile's common values, then its block for this chapter,
    then the runner's (force, jobs, executor, data_dir), then the overrides; kept to declared names.

    The chapter block and the overrides must name declared parameters (a typo is an error);
    common values a chapter does not declare are simply not offered to it.
    """
    block = profile["chapters"].get(chapter, {})
    for source, values in ((f"profile {profile_name!r} (chapters.{chapter})", block),
                           ("-p", overrides or {})):
        unknown = sorted(set(values) - set(declared))
        if unknown:
            choices = ", ".join(sorted(declared)) or "(none: the chapter has no parameters cell)"
            raise BnnlibError(
                f"{source} sets {', '.join(unknown)}, which chapter {chapter!r} does not declare; "
                f"its parameters are: {choices}"
            )
    merged = {**profile["common"], **block, **(runner or {}), **(overrides or {})}
    return {
        name: _for_chapter(value, chapter) for name, value in merged.items() if name in declared
    }


def _for_chapter(value: Any, chapter: str) -> Any:
    """A profile string with '{chapter}' in it, e.g. '_build/results/{chapter}', made concrete."""
    return value.replace("{chapter}", chapter) if isinstance(value, str) else value


# --------------------------------------------------------------------------- the models of each chapter


CHAPTER_MODELS: dict[str, Callable[[Mapping], list[ModelSpec]]] = {
    "ensembles": ensembles.models,
    "burn_eras": burn_eras.models,
    "target_hypotheses": target_hypotheses.models,
    "architecture": architecture.models,
    "diagnostics": diagnostics.models,
    "uncertainty": uncertainty.models,
}
"""Chapter name -> its study module's `models(params)`: the specs a chapter builds and shows,
which the runner's warm-up fits and scores for every chapter before any runs (one definition
serves both). A chapter not listed (the data chapter, the registry page) fits nothing."""
