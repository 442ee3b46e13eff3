"""The loaded data as every chapter sees it: two splits, the features, the target roles."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bnnlib.data.roles import TargetRoles
from bnnlib.errors import BnnlibError, unknown_name

SPLITS = ("train", "validation")


@dataclass
class Truth:
    """What a synthetic dataset knows about itself: per row the noise-free signals, per era the
    regime, drift and shift record (see bnnlib.data.synth)."""

    rows: pd.DataFrame
    eras: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, meta: dict | None = None) -> "Truth":
        eras = pd.read_csv(folder / "eras.csv", dtype={"era": str, "data_type": str, "shift_features": str},
                           keep_default_na=False)
        return cls(pd.read_parquet(folder / "rows.parquet"), eras, dict(meta or {}))


@dataclass
class Dataset:
    """Train and validation frames (index `id`; columns `era`, the features as float32 in
    0..1, the role targets with NaN kept), plus where they came from."""

    train: pd.DataFrame
    validation: pd.DataFrame
    features: list[str]
    roles: TargetRoles
    fingerprint: str
    source: str
    truth: Truth | None = None
    notes: list[str] = field(default_factory=list)

    def frame(self, split: str) -> pd.DataFrame:
        """The frame of `split` ('train' or 'validation')."""
        if split not in SPLITS:
            raise unknown_name("split", split, SPLITS)
        return self.train if split == "train" else self.validation

    @property
    def targets(self) -> list[str]:
        """The role target columns: main, aux..., long."""
        return self.roles.columns

    def arrays(self, split: str, targets: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X float32 [n, features], Y float32 [n, targets] with NaN kept, eras [n] as strings)."""
        frame = self.frame(split)
        targets = self.targets if targets is None else list(targets)
        missing = [t for t in targets if t not in frame.columns]
        if missing:
            raise BnnlibError(f"targets {missing} are not in this dataset; choose from {self.targets}")
        x = np.ascontiguousarray(frame[self.features].to_numpy(np.float32))
        y = np.ascontiguousarray(frame[targets].to_numpy(np.float32))
        return x, y, frame["era"].to_numpy(dtype=object)

    def eras(self, split: str) -> list[str]:
        """The eras of `split` in the order they appear (chronological for Numerai files)."""
        return list(pd.unique(self.frame(split)["era"]))

    def describe(self) -> pd.DataFrame:
        """Rows, eras and first/last era of each split (a small table for a data card)."""
        rows = []
        for split in SPLITS:
            eras = self.eras(split)
            rows.append({"split": split, "rows": len(self.frame(split)), "eras": len(eras),
                         "first era": eras[0] if eras else "", "last era": eras[-1] if eras else ""})
        return pd.DataFrame(rows).set_index("split")


def fingerprint(train: pd.DataFrame, validation: pd.DataFrame, features: list[str], roles: TargetRoles) -> str:
    """A stable hash of the loaded content (ids, eras, features, targets), cheap enough to run on
    every load: numeric columns are hashed as raw bytes, strings through pandas' row hash."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((list(features), roles.columns)).encode())
    for frame in (train, validation):
        digest.update(pd.util.hash_pandas_object(frame.index, index=False).to_numpy().tobytes())
        digest.update(pd.util.hash_pandas_object(frame["era"], index=False).to_numpy().tobytes())
        for block in (features, roles.columns):
            digest.update(np.ascontiguousarray(frame[block].to_numpy(np.float32)).tobytes())
    return digest.hexdigest()
