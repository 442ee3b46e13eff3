"""Checking a chapter's parameters before anything is fitted: one rule per parameter name.

A chapter's parameters arrive from three places: the runner (real Python values), plain
papermill (``-p priors '["laplace"]'`` passes the *string* ``'["laplace"]'``; ``-y`` passes
YAML values) and a user editing the parameters cell. `checked_parameters` turns strings that
stand for lists, numbers, booleans or None into those values, then checks every value it knows
(type, range, non-empty lists, known names, usable paths), so a bad value fails at once with one
line naming the parameter, the value and the fix, instead of a torch error after the fits. The
runner calls it before its warm-up, each chapter again in its first cell: the same rules both
ways.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bnnlib.data.profiles import PROFILES
from bnnlib.errors import BnnlibError, bad_value
from bnnlib.infra import cluster, tracking
from bnnlib.infra.paths import probe_writable
from bnnlib.models.bnn import ESTIMATORS, GUIDE_INITS
from bnnlib.models.likelihoods import HYPOTHESES
from bnnlib.models.precision import CHOICES
from bnnlib.models.priors import _ALIASES, PRIORS, canonical_prior

MAX_JOBS = 64  # as bnnlib.infra.executor.MAX_JOBS (not imported: it would load the engine)


# --------------------------------------------------------------------------- coercion


def parse_text(text: str) -> Any:
    """A parameter value written as text (papermill's ``-p``, a YAML file) as the value it
    stands for: a Python or JSON literal first (``['laplace']``, ``None``), then YAML
    (``[laplace]``, ``true``, ``null``); text that is neither stays text."""
    stripped = text.strip()
    try:
        return ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return yaml.safe_load(stripped)
    except yaml.YAMLError:
        return text


def _looks_structured(text: str) -> bool:
    """Whether a string meant for a str-or-list parameter is in fact a written list."""
    return text.strip().startswith(("[", "("))


# --------------------------------------------------------------------------- rules


def _is_null(value: Any) -> bool:
    """None, or papermill's text for it (``-p hetero_prior None`` passes the string 'None')."""
    return value is None or (isinstance(value, str) and value.strip() in ("None", "null", "~"))


def _choice(choices: Callable[[], tuple[str, ...]], what: str, optional: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if optional and _is_null(value):
            return None
        known = choices()
        if not isinstance(value, str) or value.lower() not in known:
            fix = f"choose one of: {', '.join(known)}" + (" (or null)" if optional else "")
            raise bad_value(name, value, f"is not a known {what}", fix)
        return value
    return check


def _priors() -> tuple[str, ...]:

    return (*PRIORS, *_ALIASES)


def _hypotheses() -> tuple[str, ...]:

    return tuple(h for h in HYPOTHESES if h != "single")  # the chapter adds 'single' itself


def _estimators() -> tuple[str, ...]:

    return tuple(ESTIMATORS)


def _guide_inits() -> tuple[str, ...]:

    return tuple(GUIDE_INITS)


def _precisions() -> tuple[str, ...]:

    return tuple(CHOICES)


def _synthetic_profiles() -> tuple[str, ...]:

    return tuple(PROFILES)


def _whole(name: str, value: Any, minimum: int, example: str, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_value(name, value, "is not a whole number", f"use a whole number of at least {minimum}, e.g. {example}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise bad_value(name, value, "is out of range", f"use a whole number {bounds}, e.g. {example}")
    return value


def _positive_int(example: str) -> Callable[[str, Any], int]:
    return lambda name, value: _whole(name, value, 1, example)


def _optional_steps(name: str, value: Any) -> int | None:
    return None if value is None else _whole(name, value, 1, "-p steps 1000 (or null: use epochs)")


def _seed(name: str, value: Any) -> int:
    return _whole(name, value, 0, "-p seed 1", maximum=2**32 - 1)


def _jobs(name: str, value: Any) -> int:
    return _whole(name, value, 1, "-p jobs 2 (1: fit in the chapter's own process)", maximum=MAX_JOBS)


def _device(name: str, value: Any) -> str:
    """auto | cpu | cuda | cuda:N, checked as written (whether the GPU exists is asked when fitting)."""

    if not isinstance(value, str) or not re.fullmatch(r"(auto|cpu|cuda(:\d+)?)", value.strip().lower()):
        raise bad_value(name, value, "is not a device", "use auto, cpu, cuda or cuda:N, e.g. --device cuda:0")
    return value.strip().lower()


def _executor(name: str, value: Any) -> str:

    try:
        return cluster.check_executor(value)
    except BnnlibError as error:
        if "not installed" in str(error):
            raise
        raise bad_value(name, value, "is not a known executor", f"use one of: {cluster.FORMS}") from None


def _mlflow_uri(name: str, value: Any) -> str | None:
    """None (no MLflow logging), or a tracking URI of a known form with MLflow installed (the
    runner checks that it is reachable too; a chapter finds out when it logs)."""

    if value is None or (isinstance(value, str) and value.strip() in ("None", "null", "~", "")):
        return None
    try:
        tracking.check_form(value, name)
    except BnnlibError:

        raise bad_value(name, value, "is not an MLflow tracking URI", f"use {tracking.FORMS}, or null") from None
    tracking.require_mlflow(f"parameter {name}")
    return value.strip()


def _positive_float(optional: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if optional and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise bad_value(name, value, "is not a positive number", f"use a positive number, e.g. -p {name} 0.001")
        return value
    return check


def _probability(name: str, value: Any) -> float:
    """A share strictly between 0 and 1 (a dropout rate of 1 drops every unit and divides by zero)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value < 1:
        raise bad_value(name, value, "is not a number strictly between 0 and 1", f"use e.g. -p {name} 0.1")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_value(name, value, "is not true or false", f"use -p {name} true or -p {name} false")
    return value


def _text(optional: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if optional and _is_null(value):
            return None  # papermill's -p long_target None gives the text 'None'
        if not isinstance(value, str) or not value.strip():
            fix = "a column name" + (" or null" if optional else "")
            raise bad_value(name, value, "is not a non-empty name", f"use {fix}, e.g. -p {name} target_nomi_20")
        return value
    return check


def _names(name: str, value: Any, *, allow_empty: bool, known: Callable[[], tuple[str, ...]] | None = None,
           example: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise bad_value(name, value, "is not a list of names", f"write a list, e.g. -p {name} '{example}'")
    if not value and not allow_empty:
        raise bad_value(name, value, "is empty", f"give at least one, e.g. -p {name} '{example}'")
    if known is not None:
        choices = known()
        unknown = [v for v in value if v.lower() not in choices]
        if unknown:
            raise bad_value(name, value, f"names unknown {unknown[0]!r}", f"choose from: {', '.join(choices)}")
    lowered = [v.lower() for v in value]
    if len(set(lowered)) != len(lowered):
        raise bad_value(name, value, "repeats a name", "give each once")
    return list(value)


def _priors_list(name: str, value: Any) -> list[str]:

    names = _names(name, value, allow_empty=False, known=_priors, example='["laplace"]')
    canonical = [canonical_prior(p) for p in names]
    if len(set(canonical)) != len(canonical):
        raise bad_value(name, value, "names one prior twice ('uniform' is 'flat')", "give each prior once")
    return names


def _hypotheses_list(name: str, value: Any) -> list[str]:
    return _names(name, value, allow_empty=False, known=_hypotheses, example='["h1", "h3"]')


def _aux_targets(name: str, value: Any) -> list[str]:
    return _names(name, value, allow_empty=True, example='["target_janet_20"]')


def _feature_set(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    return _names(name, value, allow_empty=False, example='["feature_a", "feature_b"]')


def _layers(name: str, value: Any) -> list[int]:
    fix = f"write the hidden units per layer, e.g. -p {name} '[128, 64]' ([] for a linear model)"
    if not isinstance(value, (list, tuple)):
        raise bad_value(name, value, "is not a list of layer sizes", fix)
    if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in value):
        raise bad_value(name, value, "holds a layer size that is not a positive whole number", fix)
    return list(value)


def _architectures(name: str, value: Any) -> list[list[int]]:
    fix = f"write one list of hidden units per network, e.g. -p {name} '[[], [128], [128, 64]]'"
    if not isinstance(value, (list, tuple)) or not value:
        raise bad_value(name, value, "is not a non-empty list of networks", fix)
    if not all(isinstance(h, (list, tuple)) for h in value):
        raise bad_value(name, value, "is not a list of lists", fix)
    out = [_layers(name, h) for h in value]
    depths = [len(h) for h in out]
    if len(set(depths)) != len(depths):
        raise bad_value(name, value, "repeats a number of hidden layers", "give one network per depth")
    return out


def _writable_folder(name: str, value: Any, root: Path) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise bad_value(name, value, "is not a folder path", f"use a path, e.g. -p {name} _build/{name.replace('_dir', '')}")
    path = Path(value).expanduser()
    probe_writable(name, value, path if path.is_absolute() else root / path)
    return value


def _data_dir(name: str, value: Any, root: Path) -> Any:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise bad_value(name, value, "is not a folder path", "pass the folder of the Numerai files (or null)")
    path = Path(value).expanduser()
    if not (path if path.is_absolute() else root / path).is_dir():
        raise bad_value(name, value, "is not a folder", "pass the folder holding the Numerai files (--data-dir DIR)")
    return value


# name -> (rule, whether a string value may be the value itself)
RULES: dict[str, tuple[Callable[..., Any], bool]] = {
    "data_source": (_choice(lambda: ("synthetic", "numerai"), "data source"), True),
    "synthetic_profile": (_choice(_synthetic_profiles, "synthetic profile"), True),
    "feature_set": (_feature_set, True),
    "main_target": (_text(), True),
    "aux_targets": (_aux_targets, True),
    "long_target": (_text(optional=True), True),
    "priors": (_priors_list, False),
    "hypotheses": (_hypotheses_list, False),
    "divergence_prior": (_choice(_priors, "prior"), True),
    "hidden": (_layers, False),
    "architectures": (_architectures, False),
    "epochs": (_positive_int("-p epochs 2"), False),
    "batch_size": (_positive_int("-p batch_size 4096"), False),
    "draws": (_positive_int("-p draws 50"), False),
    "steps": (_optional_steps, False),
    "lr_baseline": (_positive_float(), False),
    "lr_baseline_final": (_positive_float(), False),
    "lr_bnn": (_positive_float(), False),
    "lr_bnn_scale": (_positive_float(optional=True), False),
    "lr_bnn_final": (_positive_float(), False),
    "members": (_positive_int("-p members 10"), False),
    "dropout": (_probability, False),
    "hetero_prior": (_choice(_priors, "prior", optional=True), True),
    "guide_init": (_choice(_guide_inits, "guide initialisation"), True),
    "init_scale": (_positive_float(optional=True), False),
    "init_shrink": (_positive_float(), False),
    "estimator": (_choice(_estimators, "ELBO estimator"), True),
    "precision": (_choice(_precisions, "precision"), True),
    "seed": (_seed, False),
    "force": (_bool, False),
    "jobs": (_jobs, False),
    "device": (_device, True),
    "executor": (_executor, True),
    "mlflow_uri": (_mlflow_uri, True),
}
PATHS = {"data_root": _writable_folder, "cache_dir": _writable_folder, "results_dir": _writable_folder,
         "data_dir": _data_dir}
"""Rules that need the project folder (relative paths are read against it)."""


def _coerce(name: str, value: Any, default: Any, text_allowed: bool) -> Any:
    """A string from papermill turned into what it stands for, where the parameter is not text."""
    if not isinstance(value, str):
        return value
    if name in RULES:
        if not text_allowed or _looks_structured(value):
            return parse_text(value)
        return value
    if name in PATHS:
        return None if value.strip() in ("None", "null", "~") else value
    if default is not None and not isinstance(default, str):
        return parse_text(value)
    return value


def checked_parameters(params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None, *,
                       root: str | Path | None = None) -> dict:
    """`params` with papermill's strings read as values and every known value checked.

    A string given for a parameter that is not text (``'["laplace"]'`` for `priors`, ``'50'``
    for `draws`, ``'null'`` for `steps`) is read as a Python/JSON literal or YAML; so is one
    for a name not in `RULES` whose default (in `defaults`, e.g. the chapter's parameters cell)
    is not a string. Each name in `RULES` and `PATHS` is then checked (relative paths against
    `root`, default the current folder, where chapters run): the first bad value raises a
    BnnlibError whose one line names the parameter, the value and the fix. Names this module
    does not know pass through unchanged. Returns a new dict, in the order of `params`.
    """
    defaults = defaults or {}
    folder = Path(root) if root is not None else Path.cwd()
    out: dict[str, Any] = {}
    for name, value in params.items():
        rule, text_allowed = RULES.get(name, (None, True))
        value = _coerce(name, value, defaults.get(name), text_allowed)
        if rule is not None:
            value = rule(name, value)
        elif name in PATHS:
            value = PATHS[name](name, value, folder)
        out[name] = value
    _check_together(out)
    return out


def _check_together(params: Mapping[str, Any]) -> None:
    """Rules between parameters: real data needs its folder, synthetic data takes none, and the
    prior a divergence matrix compares must be one of the priors."""
    source = params.get("data_source")
    if source == "synthetic" and params.get("data_dir") is not None:
        raise bad_value("data_dir", params["data_dir"], "is given, but data_source is 'synthetic', which does not read it",
                    "drop --data-dir / data_dir, or use the numerai profile (data_source numerai) for real files")
    if source == "numerai" and "data_dir" in params and params["data_dir"] is None:
        raise bad_value("data_dir", None, "is missing, and data_source 'numerai' needs it",
                    "pass --data-dir DIR, the folder holding the Numerai files")
    if "divergence_prior" in params and "priors" in params:

        if canonical_prior(params["divergence_prior"]) not in {canonical_prior(p) for p in params["priors"]}:
            raise bad_value("divergence_prior", params["divergence_prior"], "is not one of the priors",
                        f"choose one of {params['priors']} or add it to priors")
