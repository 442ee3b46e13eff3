"""Data: the synthetic Numerai-like generator, the real-data loader, the numerapi download.

Chapters call `open_dataset(...)` with their parameters; it returns a `Dataset` (train and
validation frames, the features, the target roles, a fingerprint for the cache, and on
synthetic data the ground truth).
"""

from bnnlib.data.dataset import Dataset, Truth
from bnnlib.data.loader import LAYOUTS, load_dataset, load_synthetic, open_dataset
from bnnlib.data.profiles import SynthProfile
from bnnlib.data.roles import ROLE_PRESETS, V3_ROLES, V4_ROLES, V5_ROLES, TargetRoles
from bnnlib.data.synth import PROFILES, SyntheticData, generate, get_profile, write_profile

__all__ = [
    "Dataset", "Truth", "TargetRoles", "V3_ROLES", "V4_ROLES", "V5_ROLES", "ROLE_PRESETS", "LAYOUTS",
    "load_dataset", "load_synthetic", "open_dataset", "SynthProfile", "PROFILES", "SyntheticData",
    "generate", "get_profile", "write_profile",
]
