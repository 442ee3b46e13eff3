"""Which target columns play which part in the study: the main target, two others, a long one.

The talk used Numerai v3 names (nomi, janet, george; 20 and 60 days). Later versions renamed the
targets, so the roles are parameters, with a preset per data version.
"""

from __future__ import annotations

from dataclasses import dataclass

from bnnlib.errors import BnnlibError


@dataclass(frozen=True)
class TargetRoles:
    """The main 20-day target (scored), auxiliary targets (same horizon, other kinds) and the
    long-horizon version of the main target (None when the data has none)."""

    main: str = "target_nomi_20"
    aux: tuple[str, ...] = ("target_janet_20", "target_george_20")
    long: str | None = "target_nomi_60"

    def __post_init__(self) -> None:
        aux = (self.aux,) if isinstance(self.aux, str) else tuple(self.aux)
        object.__setattr__(self, "aux", aux)
        names = [self.main, *aux] + ([self.long] if self.long is not None else [])
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            raise BnnlibError(f"target names must be non-empty strings, got {bad!r}; "
                              "pass column names such as 'target_nomi_20'")
        if len(set(names)) != len(names):
            raise BnnlibError(f"target roles repeat a column: main={self.main!r}, aux={list(aux)!r}, "
                              f"long={self.long!r}; give each role its own target")

    @property
    def columns(self) -> list[str]:
        """All role targets: main, aux..., long."""
        return [self.main, *self.aux] + ([self.long] if self.long is not None else [])


V3_ROLES = TargetRoles()
# v4 (2022) added a version tag to the same target names.
V4_ROLES = TargetRoles("target_nomi_v4_20", ("target_janet_v4_20", "target_george_v4_20"), "target_nomi_v4_60")
# v5: the payout target is ender. numerai-data.md names no auxiliary targets for v5; we take
# jasper and teager2b, the 20-day targets Numerai's own target-ensemble examples pair with ender
# (our choice; pass others with --param aux_targets).
V5_ROLES = TargetRoles("target_ender_20", ("target_jasper_20", "target_teager2b_20"), "target_ender_60")
ROLE_PRESETS: dict[str, TargetRoles] = {"v3": V3_ROLES, "v4": V4_ROLES, "v5": V5_ROLES}


def suggest_roles(available: list[str]) -> str:
    """A hint naming the preset whose targets all exist in `available` (empty if none fits)."""
    for version, roles in ROLE_PRESETS.items():
        if all(c in available for c in roles.columns):
            return (f" The data looks like Numerai {version}: use main_target={roles.main!r}, "
                    f"aux_targets={list(roles.aux)!r}, long_target={roles.long!r}.")
    return ""
