"""Load Numerai files (v3, v4/v5) or our synthetic files into a Dataset, and the chapters' entry point.

Only the needed columns are read (era, data_type, the chosen features, the role targets): a
full v5 file does not fit in memory otherwise. Every problem a user can fix (a missing file,
column, feature set or target; values that are not Numerai's) is one BnnlibError that says
what is wrong, what exists, and what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bnnlib.data.dataset import Dataset, Truth, fingerprint
from bnnlib.data.roles import ROLE_PRESETS, V3_ROLES, V4_ROLES, V5_ROLES, TargetRoles, suggest_roles
from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.data.synth import generator_hash, get_profile, write_profile

__all__ = ["Dataset", "TargetRoles", "V3_ROLES", "V4_ROLES", "V5_ROLES", "ROLE_PRESETS", "LAYOUTS",
           "load_dataset", "load_synthetic", "open_dataset"]

MAKE_FILES = ("download them with `bnnlib data download --version v5.2 --dest DIR`, or make synthetic "
              "ones with `bnnlib data synth --profile default --out DIR`")


@dataclass(frozen=True)
class Layout:
    """File names of one Numerai data version; each split may come as float or _int8 file."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    features: str = "features.json"

    def describe(self) -> str:
        return f"{' or '.join(self.train)}, {' or '.join(self.validation)} and {self.features}"


_CURRENT = Layout(("train.parquet", "train_int8.parquet"), ("validation.parquet", "validation_int8.parquet"))
LAYOUTS: dict[str, Layout] = {
    "v3": Layout(("numerai_training_data.parquet", "numerai_training_data_int8.parquet"),
                 ("numerai_validation_data.parquet", "numerai_validation_data_int8.parquet")),
    "v4": _CURRENT,
    "v5": _CURRENT,
    "synthetic": _CURRENT,
}


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _resolve_files(data_dir: Path, layout: str) -> tuple[str, Path, Path, Path]:
    """(layout name, train file, validation file, features.json) or a BnnlibError saying what is missing."""
    if layout != "auto" and layout not in LAYOUTS:
        raise unknown_name("data layout", layout, [*LAYOUTS, "auto"])
    if not data_dir.is_dir():
        raise BnnlibError(f"data folder {data_dir} does not exist; pass the folder that holds Numerai's "
                          f"files ({LAYOUTS['v3'].describe()} for v3, {_CURRENT.describe()} for v4/v5), or "
                          + MAKE_FILES)
    candidates = list(LAYOUTS) if layout == "auto" else [layout]
    for name in candidates:
        spec = LAYOUTS[name]
        train, valid = _first_existing(data_dir, spec.train), _first_existing(data_dir, spec.validation)
        if train is not None and valid is not None:
            features = data_dir / spec.features
            if not features.is_file():
                raise BnnlibError(f"{data_dir} has {train.name} and {valid.name} but no {spec.features} "
                                  f"(it names the feature sets and targets); put it beside them, or " + MAKE_FILES)
            return name, train, valid, features
    present = sorted(p.name for p in data_dir.iterdir())[:20]
    expected = "; ".join(f"{n}: {LAYOUTS[n].describe()}" for n in dict.fromkeys(candidates))
    raise BnnlibError(f"{data_dir} does not hold a Numerai dataset (layout {layout!r}). Expected {expected}. "
                      f"Found: {present or 'nothing'}. To get the files, " + MAKE_FILES)


def _choose_features(feature_set: str | list[str], features_json: dict, columns: list[str], source: Path) -> list[str]:
    available = [c for c in columns if c.startswith("feature_")]
    if isinstance(feature_set, str):
        sets = features_json.get("feature_sets", {})
        if feature_set in sets:
            chosen = list(sets[feature_set])
        elif feature_set == "all":
            chosen = available
        else:
            raise unknown_name(f"feature set (in {source.name})", feature_set, [*sets, "all"])
    else:
        chosen = list(feature_set)
    missing = [f for f in chosen if f not in columns]
    if missing:
        raise BnnlibError(f"{len(missing)} features of the chosen set are not columns of the data, e.g. "
                          f"{missing[:5]}; the data has {len(available)} feature columns such as "
                          f"{available[:5]}: pick another feature_set or matching files")
    if not chosen:
        raise BnnlibError(f"feature set {feature_set!r} is empty; choose one with features")
    return chosen


def _check_targets(roles: TargetRoles, columns: list[str], path: Path) -> None:
    missing = [t for t in roles.columns if t not in columns]
    if missing:
        targets = [c for c in columns if c.startswith("target")]
        raise BnnlibError(f"targets {missing} are not columns of {path.name}; it has {len(targets)} targets: "
                          f"{', '.join(targets[:30])}{' ...' if len(targets) > 30 else ''}. Pass main_target, "
                          f"aux_targets and long_target (long_target may be None)." + suggest_roles(columns))


def _era_labels(era: pd.Series) -> pd.Series:
    """Eras as zero-padded strings ('0001'); integer eras (some files) are padded to 4 digits."""
    if pd.api.types.is_integer_dtype(era) or pd.api.types.is_float_dtype(era):
        return era.astype(np.int64).map(lambda e: f"{e:04d}").astype(str)
    return era.astype(str)


def _features_to_unit(frame: pd.DataFrame, features: list[str], path: Path) -> np.ndarray:
    """Features as float32 on {0, .25, .5, .75, 1}: integer columns (int8 files, 0..4) are
    divided by 4, float columns taken as they are.

    Column by column, so each column is judged by its own type, and a problem names the column
    and the values as the file holds them (an int8 7 is reported as 7). int8 columns are checked
    as int8 and scaled straight into the result, which is column-major, as pandas stores a
    frame's block, so it becomes the dataset's frame without another copy (at v5's 2.7M rows,
    each float32 copy of 42 features is 450 MB)."""
    values = np.empty((len(frame), len(features)), dtype=np.float32, order="F")
    integer = [pd.api.types.is_integer_dtype(frame[f]) for f in features]
    nan_columns, off_columns, examples = [], [], []
    for j, feature in enumerate(features):
        column = frame[feature]
        if not (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)):
            raise BnnlibError(f"{path.name}: feature {feature!r} holds {column.dtype} values, not numbers; "
                              "Numerai features are 0..1 in steps of 0.25 (or 0..4 in int8 files): check the files")
        raw = column.to_numpy()
        if integer[j]:
            off = (raw < 0) | (raw > 4)
            np.multiply(raw, np.float32(0.25), out=values[:, j], casting="unsafe")
        else:
            unit = raw.astype(np.float32, copy=False)
            if np.isnan(unit).any():
                nan_columns.append(feature)
                continue
            quarters = unit * 4
            off = ~((quarters == np.round(quarters)) & (quarters >= 0) & (quarters <= 4))
            values[:, j] = unit
        if off.any():
            off_columns.append(feature)
            examples.extend(raw[off][: 3 - len(examples)].tolist())
    if nan_columns:
        raise BnnlibError(f"{path.name}: features {nan_columns[:5]} have missing values (NaN); Numerai's "
                          "current files fill them with the middle level (0.5, or 2 in int8 files): fill them "
                          "so, or choose a feature set without them")
    if off_columns:
        odd = [f for f in off_columns if not integer[features.index(f)]]
        if any(integer) and odd:  # a float column among int8 ones: blame it, not the int8 ones
            kinds = {str(frame[f].dtype) for f in odd}
            raise BnnlibError(f"{path.name}: features {odd[:5]} are {'/'.join(sorted(kinds))} among integer (int8) "
                              f"features and hold values such as {examples}, off Numerai's levels; write every "
                              "feature in one encoding (0..4 integers, or 0..1 in steps of 0.25)")
        scale = "0..4 (int8 files)" if all(integer) else "{0, 0.25, 0.5, 0.75, 1} (or 0..4 in int8 files)"
        raise BnnlibError(f"{path.name}: features {off_columns[:5]} hold values outside Numerai's 5 levels "
                          f"{scale}, e.g. {examples}; these are not Numerai features: check the files")
    return values


def _check_era_sizes(frame: pd.DataFrame, path: Path) -> None:
    """Every era needs at least 2 rows: a per-era correlation of one row does not exist."""
    sizes = frame.groupby("era", sort=False).size()
    small = sizes[sizes < 2]
    if len(small):
        raise BnnlibError(f"{path.name}: era {small.index[0]} has {int(small.iloc[0])} row ({len(small)} such "
                          "eras); scores are per-era correlations, which need at least 2 rows per era: drop or "
                          "merge those eras")


def _read_split(path: Path, features: list[str], roles: TargetRoles, columns: list[str], split: str,
                notes: list[str]) -> pd.DataFrame:
    if "era" not in columns:
        raise BnnlibError(f"{path.name} has no 'era' column; Numerai files have one per row: "
                          "check that this is a Numerai train or validation file")
    wanted = ["era"] + (["data_type"] if "data_type" in columns else []) + features + roles.columns
    index_in_data = "id" in columns and "id" not in (pq.read_schema(path).pandas_metadata or {}).get("index_columns", [])
    frame = pd.read_parquet(path, columns=wanted + (["id"] if index_in_data else []))
    if index_in_data:
        frame = frame.set_index("id")
    if "data_type" not in frame.columns:
        notes.append(f"{path.name} has no data_type column, so all its rows are taken as {split} rows")
    else:
        kept = frame["data_type"].astype(str) == split
        if split == "validation" and not kept.any():
            raise BnnlibError(f"{path.name} has no rows with data_type == 'validation'; pass a validation file")
        if not kept.all():
            frame = frame[kept]
    unit = _features_to_unit(frame, features, path)
    out = pd.DataFrame(unit, columns=features, index=frame.index, copy=False)  # no copy: see _features_to_unit
    out.index.name = "id"
    out.insert(0, "era", _era_labels(frame["era"]).to_numpy())
    for target in roles.columns:
        if not pd.api.types.is_numeric_dtype(frame[target]):
            raise BnnlibError(f"{path.name}: target {target!r} is not numeric; pick a target column")
        out[target] = frame[target].to_numpy(np.float32)
    del frame
    out = _check_main(out, roles.main, path, split, notes)
    _check_era_sizes(out, path)
    return out


def _check_main(frame: pd.DataFrame, main: str, path: Path, split: str, notes: list[str]) -> pd.DataFrame:
    """The main target may not be NaN, except in whole trailing validation eras (targets not yet
    resolved, as in current Numerai validation files): those eras are dropped, with a note."""
    missing = frame[main].isna()
    if not missing.any():
        return frame
    eras = pd.unique(frame["era"])
    missing_eras = frame.loc[missing, "era"].unique()
    whole = missing.groupby(frame["era"], sort=False).all()
    trailing = []
    for era in reversed(eras):
        if not whole[era]:
            break
        trailing.append(era)
    if split == "validation" and set(missing_eras) <= set(trailing) and len(trailing) < len(eras):
        notes.append(f"dropped {len(trailing)} trailing validation eras whose main target {main!r} is not "
                     f"resolved yet ({trailing[-1]}..{trailing[0]})")
        return frame[~frame["era"].isin(trailing)]
    raise BnnlibError(f"{path.name}: the main target {main!r} is missing (NaN) in {int(missing.sum())} rows of "
                      f"{len(missing_eras)} eras, e.g. era {missing_eras[0]}; the main target must be complete: "
                      "choose a main_target without gaps or clean the file")


def load_dataset(data_dir: str | Path, *, feature_set: str | list[str] = "small", roles: TargetRoles = V3_ROLES,
                 layout: str = "auto") -> Dataset:
    """Load train and validation from `data_dir` (v3, v4/v5 or synthetic layout)."""
    data_dir = Path(data_dir)
    name, train_path, valid_path, features_path = _resolve_files(data_dir, layout)
    try:
        features_json = json.loads(features_path.read_text())
    except ValueError as error:
        raise BnnlibError(f"{features_path} is not valid JSON ({error}); download it again") from None
    train_columns = pq.read_schema(train_path).names
    valid_columns = pq.read_schema(valid_path).names
    features = _choose_features(feature_set, features_json, train_columns, train_path)
    _choose_features(features, features_json, valid_columns, valid_path)
    _check_targets(roles, train_columns, train_path)
    _check_targets(roles, valid_columns, valid_path)
    notes: list[str] = []
    train = _read_split(train_path, features, roles, train_columns, "train", notes)
    valid = _read_split(valid_path, features, roles, valid_columns, "validation", notes)
    truth = None
    meta_path = data_dir / "meta.json"
    if (data_dir / "truth" / "rows.parquet").is_file() and meta_path.is_file():
        truth = Truth.read(data_dir / "truth", json.loads(meta_path.read_text()))
    source = f"{name} files in {data_dir}"
    if truth is not None:
        source = f"synthetic data (profile {truth.meta.get('profile')!r}, seed {truth.meta.get('seed')}) in {data_dir}"
    return Dataset(train, valid, features, roles, fingerprint(train, valid, features, roles), source, truth, notes)


def load_synthetic(profile: str = "default", root: str | Path = Path("_build/data"), seed: int | None = None, *,
                   feature_set: str | list[str] = "small", roles: TargetRoles = V3_ROLES) -> Dataset:
    """The synthetic dataset `profile`: generated once into root/synthetic-<profile>-seed<seed>/, then reused."""

    spec = get_profile(profile).with_seed(seed)
    folder = Path(root) / f"synthetic-{spec.name}-seed{spec.seed}"
    expected = generator_hash()
    try:
        current = json.loads((folder / "meta.json").read_text()).get("generator_hash") == expected
    except (OSError, ValueError, AttributeError):
        current = False
    if not current:
        write_profile(spec, folder)
    return load_dataset(folder, feature_set=feature_set, roles=roles, layout="synthetic")


def open_dataset(source: str = "synthetic", *, data_dir: str | Path | None = None,
                 synthetic_profile: str = "default", feature_set: str | list[str] = "small",
                 main_target: str = V3_ROLES.main, aux_targets=V3_ROLES.aux,
                 long_target: str | None = V3_ROLES.long, data_root: str | Path = "_build/data",
                 seed: int | None = None, layout: str = "auto") -> Dataset:
    """The one call a chapter makes with its parameters: synthetic data or real Numerai files."""
    roles = TargetRoles(main_target, tuple([aux_targets] if isinstance(aux_targets, str) else aux_targets or ()),
                        long_target)
    if source == "synthetic":
        return load_synthetic(synthetic_profile, Path(data_root), seed, feature_set=feature_set, roles=roles)
    if source == "numerai":
        if data_dir is None:
            raise BnnlibError("data_source 'numerai' needs the folder of the Numerai files: pass --data-dir DIR "
                              "(or the data_dir parameter); " + MAKE_FILES)
        return load_dataset(data_dir, feature_set=feature_set, roles=roles, layout=layout)
    raise unknown_name("data source", source, ["synthetic", "numerai"])
