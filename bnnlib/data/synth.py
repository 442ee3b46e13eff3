"""A synthetic dataset in Numerai's v3 schema that knows its own ground truth.

Nobody can download Numerai data here and tests must not touch the network, so the book runs
by default on data generated to show Numerai's statistical facts (the data chapter's
table of facts, `bnnlib.data.facts`): 5-level features and targets, targets correlated like nomi/janet/george,
a weak signal that a linear model finds only partly (the rest is feature interactions),
relations that drift between eras and sometimes shift suddenly. Beside the data it keeps the
noise-free signal of every row and the state of every era, so the book can check its methods
against the truth.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import bnnlib
from bnnlib.data.levels import TARGET_SHARES, bin_within_eras, era_starts, latent_corr_for
from bnnlib.data.profiles import (
    AUX_TARGETS,
    LONG_TARGET,
    MAIN_TARGET,
    PROFILES,
    TARGETS,
    SynthProfile,
    get_profile,
)
from bnnlib.data.world import EraPath, World, feature_levels, make_era_path, make_world, standardize
from bnnlib.errors import BnnlibError
from bnnlib.data import levels, profiles, world

__all__ = ["PROFILES", "SynthProfile", "SyntheticData", "generate", "get_profile", "write_profile"]

META_FILE = "meta.json"
OTHER_TARGETS = (*AUX_TARGETS, LONG_TARGET)  # the order of SynthProfile.target_corrs


@dataclass
class SyntheticData:
    """A generated dataset: the two splits, Numerai's features.json, and the ground truth."""

    profile: SynthProfile
    train: pd.DataFrame
    validation: pd.DataFrame
    features_json: dict
    truth_rows: pd.DataFrame
    truth_eras: pd.DataFrame
    world: World | None = field(default=None, repr=False)  # the hidden structure (tests, analysis)
    path: EraPath | None = field(default=None, repr=False)

    @property
    def meta(self) -> dict:
        """What made this dataset (written beside the files)."""
        return {"generator": "bnnlib.data.synth", "generator_hash": generator_hash(),
                "profile": self.profile.name, "seed": self.profile.seed, "bnnlib_version": bnnlib.__version__,
                "train_rows": len(self.train), "validation_rows": len(self.validation)}


def generator_hash() -> str:
    """Hash of the generator's source code: a synthetic folder written by older code is stale."""

    digest = hashlib.blake2b(digest_size=8)
    for module in (levels, profiles, world, inspect.getmodule(generator_hash)):
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


def _era_sizes(profile: SynthProfile, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows per era: train eras grow over time (Numerai's early eras are smaller), validation is flat."""
    ramp = np.linspace(0.75, 1.25, profile.train_eras) if profile.train_eras > 1 else np.ones(1)
    train = profile.train_rows * ramp * rng.uniform(0.9, 1.1, profile.train_eras)
    valid = profile.validation_rows * rng.uniform(0.95, 1.05, profile.validation_eras)
    return np.maximum(np.rint(train), 20).astype(np.int64), np.maximum(np.rint(valid), 20).astype(np.int64)


def _row_ids(n: int, seed: int) -> list[str]:
    """Unique Numerai-looking ids: a bijective scramble of the row counter modulo 2**60."""
    mask = np.uint64(2**60 - 1)
    counter = np.arange(1, n + 1, dtype=np.uint64)
    offset = np.uint64((seed * 0x2545F4914F6CDD1D) % 2**60)
    with np.errstate(over="ignore"):
        scrambled = ((counter * np.uint64(0x9E3779B97F4A7C15)) & mask) + offset
    return [f"n{v & (2**60 - 1):015x}" for v in scrambled.tolist()]


def _per_era(x: np.ndarray, weights: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Row-wise x @ weights[era] for rows stored era by era (one small product per era)."""
    out = np.empty(len(x))
    for start, size, w in zip(era_starts(sizes), sizes, weights.astype(x.dtype)):
        out[start : start + size] = x[start : start + size] @ w
    return out


def _signals(profile: SynthProfile, world: World, path: EraPath, eras: np.ndarray, sizes: np.ndarray,
             x: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free parts of every target's latent (see SynthProfile for the model)."""
    a = profile.signal_corr
    interaction = world.main.interaction(x)
    linear = _per_era(x, path.linear[eras], sizes)
    factor = _per_era(x, path.factor[eras], sizes)
    structured = linear + interaction
    out = {
        "signal": a * structured + factor,
        "signal_stable": a * (world.main.linear(x) + interaction),
        "signal_linear": a * linear,
        "signal_interaction": a * interaction,
        "signal_factor": factor,
    }
    for name, overlap, own in zip(OTHER_TARGETS, profile.signal_overlap, world.aux):
        out[f"signal_{name}"] = a * (overlap * structured + np.sqrt(1 - overlap**2) * own(x)) + factor
    return out


def _latents(profile: SynthProfile, signals: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Unit-variance target latents: signal + noise, the noise shared so binned corrs hit the profile."""
    main = signals["signal"]
    sigma = np.sqrt(1 - main.var())
    if not np.isfinite(sigma) or sigma <= 0:
        raise BnnlibError(f"synthetic profile {profile.name!r}: the signal explains all the variance; "
                          "lower signal_corr or factor_scale")
    shared = rng.standard_normal(len(main))
    out = {MAIN_TARGET: main + sigma * shared}
    for name, binned in zip(OTHER_TARGETS, profile.target_corrs):
        signal = signals[f"signal_{name}"]
        sigma_k = np.sqrt(1 - signal.var())
        wanted = latent_corr_for(binned)
        common = (wanted - np.cov(main, signal)[0, 1]) / (sigma * sigma_k)
        common = float(np.clip(common, -1.0, 1.0))
        noise = common * shared + np.sqrt(1 - common**2) * rng.standard_normal(len(main))
        out[name] = signal + sigma_k * noise
    return out


def _truth_eras(profile: SynthProfile, world: World, path: EraPath, eras: np.ndarray, sizes: np.ndarray,
                labels: list[str], split: np.ndarray, signals: dict[str, np.ndarray]) -> pd.DataFrame:
    base = world.main.weights
    linear = path.linear[eras]
    starts = era_starts(sizes)
    table = pd.DataFrame({
        "era": labels,
        "data_type": split,
        "rows": sizes,
        "regime": path.regime[eras],
        **{f"drift_{k}": path.mix[eras, k] for k in range(profile.n_regimes)},
        # how far the era's linear weights are from the base weights, and their cosine with them
        "drift_distance": np.linalg.norm(linear - base, axis=1) / np.linalg.norm(base),
        "alignment": linear @ base / (np.linalg.norm(linear, axis=1) * np.linalg.norm(base)),
        "shifted": path.shifted[eras],
        "concept_shift": path.concept_shifted[eras],
        "shift_flipped": path.flipped[eras].sum(axis=1),
        "shift_features": [";".join(world.features[j] for j in np.flatnonzero(row)) for row in path.flipped[eras]],
        "feature_loading": path.loading[eras],
        "factor_strength": np.linalg.norm(path.factor[eras], axis=1),
        "signal_sd": [float(signals["signal"][s : s + n].std()) for s, n in zip(starts, sizes)],
    })
    return table


def generate(profile: str | SynthProfile = "default", seed: int | None = None) -> SyntheticData:
    """Generate a dataset; the same profile and seed always give the same data."""
    profile = get_profile(profile).with_seed(seed)
    world_seq, path_seq, rows_seq = np.random.SeedSequence(profile.seed).spawn(3)
    world = make_world(profile, np.random.default_rng(world_seq))
    path = make_era_path(profile, world, np.random.default_rng(path_seq))
    rng = np.random.default_rng(rows_seq)

    train_sizes, valid_sizes = _era_sizes(profile, rng)
    first_valid = profile.train_eras + profile.gap_eras
    eras = np.concatenate([np.arange(profile.train_eras), first_valid + np.arange(profile.validation_eras)])
    sizes = np.concatenate([train_sizes, valid_sizes])
    labels = [f"{e + 1:04d}" for e in eras]
    split = np.array(["train"] * profile.train_eras + ["validation"] * profile.validation_eras)
    if eras[-1] + 1 > 9999:
        raise BnnlibError(f"synthetic profile {profile.name!r} has more than 9999 eras; use fewer")

    levels = feature_levels(rng, sizes, np.repeat(path.loading[eras], sizes), world.latent_groups)
    # float32 is plenty for features on 5 levels and halves the largest array (rows x features)
    signals = _signals(profile, world, path, eras, sizes, standardize(levels, np.float32))
    latents = _latents(profile, signals, rng)

    n = int(sizes.sum())
    ids = pd.Index(_row_ids(n, profile.seed), name="id")
    row_era = np.repeat(np.array(labels, dtype=object), sizes)
    # Features and targets as one float32 block, column by column (pandas' own layout), built
    # once: the two splits are views of it, so no frame is copied.
    columns = [*world.features, *TARGETS]
    values = np.empty((len(columns), n), dtype=np.float32)
    np.multiply(levels.T, np.float32(0.25), out=values[: len(world.features)])
    del levels
    for name in TARGETS:
        values[columns.index(name)] = bin_within_eras(latents[name], sizes, TARGET_SHARES) * np.float32(0.25)
    if profile.unresolved_eras:
        values[columns.index(LONG_TARGET), n - int(sizes[-profile.unresolved_eras:].sum()):] = np.nan
    n_train = int(train_sizes.sum())

    def split_frame(rows: slice, data_type: str) -> pd.DataFrame:
        frame = pd.DataFrame(values[:, rows].T, index=ids[rows], columns=columns, copy=False)
        frame.insert(0, "era", row_era[rows])
        frame.insert(1, "data_type", np.full(len(frame), data_type, dtype=object))
        return frame

    train, validation = split_frame(slice(0, n_train), "train"), split_frame(slice(n_train, n), "validation")
    truth_rows = pd.DataFrame({"era": row_era, **{k: v.astype(np.float32) for k, v in signals.items()}}, index=ids)
    truth_eras = _truth_eras(profile, world, path, eras, sizes, labels, split, signals)
    names = world.features
    features_json = {
        "feature_sets": {
            "small": [names[j] for j in world.small],
            "medium": [names[j] for j in world.medium],
            "all": list(names),
        },
        "targets": list(TARGETS),
    }
    return SyntheticData(profile, train, validation, features_json, truth_rows, truth_eras, world, path)


def is_synthetic_output(folder: Path) -> bool:
    """Whether `folder` holds what write_profile writes (so it may be replaced)."""
    meta = folder / META_FILE
    try:
        return json.loads(meta.read_text()).get("generator") == "bnnlib.data.synth"
    except (OSError, ValueError, AttributeError):
        return False


def write_profile(profile: str | SynthProfile, out: Path, seed: int | None = None) -> Path:
    """Write train.parquet, validation.parquet, features.json, truth/ and meta.json into `out`.

    Written into a temporary sibling folder and renamed into place, so `out` is either complete
    or untouched. An existing `out` is replaced only if it is empty or a previous synthetic
    output; anything else is refused rather than overwritten.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BnnlibError(f"{out} is a file, not a folder; pass --out a folder path")
    if out.is_dir() and any(out.iterdir()) and not is_synthetic_output(out):
        raise BnnlibError(f"{out} is not empty and holds no synthetic dataset (no {META_FILE} from bnnlib); "
                          "choose an empty or new folder for --out")
    data = generate(profile, seed)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise BnnlibError(f"cannot write the synthetic data to {out} ({error.strerror or error}); "
                          "choose a folder you can write to") from None
    tmp.chmod(0o755)  # mkdtemp makes it private; the data is not
    try:
        data.train.to_parquet(tmp / "train.parquet")
        data.validation.to_parquet(tmp / "validation.parquet")
        (tmp / "features.json").write_text(json.dumps(data.features_json, indent=2))
        (tmp / "truth").mkdir()
        data.truth_rows.to_parquet(tmp / "truth" / "rows.parquet")
        data.truth_eras.to_csv(tmp / "truth" / "eras.csv", index=False)
        (tmp / META_FILE).write_text(json.dumps(data.meta, indent=2))
        (tmp / "README.txt").write_text(_readme(data))
        _publish(tmp, out, data.meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _publish(tmp: Path, out: Path, meta: dict) -> None:
    """Rename the finished folder `tmp` to `out`, replacing a previous synthetic output.

    If another process published the same dataset first, its copy is kept and ours dropped.
    """
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / "data")
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old / "data", out)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.replace(tmp, out)
    except OSError:
        if not _same_dataset(out, meta):
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _same_dataset(folder: Path, meta: dict) -> bool:
    try:
        theirs = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return all(theirs.get(k) == meta.get(k) for k in ("generator_hash", "profile", "seed"))


def _readme(data: SyntheticData) -> str:
    p = data.profile
    return (
        f"Synthetic Numerai-like data (bnnlib {bnnlib.__version__}), profile '{p.name}', seed {p.seed}.\n"
        "Not real Numerai data: generated by bnnlib.data.synth in Numerai's v3 schema.\n\n"
        f"train.parquet       {len(data.train)} rows, eras {data.train['era'].iloc[0]}..{data.train['era'].iloc[-1]}\n"
        f"validation.parquet  {len(data.validation)} rows, eras {data.validation['era'].iloc[0]}.."
        f"{data.validation['era'].iloc[-1]}\n"
        "features.json       feature_sets (small, medium, all) and targets\n"
        "truth/rows.parquet  per row: the noise-free signal of each target and its parts\n"
        "truth/eras.csv      per era: regime, drift state, sudden shifts, factor strength\n\n"
        "Read with pandas: pd.read_parquet('train.parquet').\n"
        f"Remake with: bnnlib data synth --profile {p.name} --seed {p.seed} --out <folder>\n"
    )
