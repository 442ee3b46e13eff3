"""The one exception type a user sees: its message names the problem and the fix."""


class BnnlibError(Exception):
    """An error caused by input the user can correct (a path, a name, a parameter).

    The command line prints only its message and exits with status 2, so the message must say
    what is wrong and what to do instead (for a bad name: the names that exist).
    """


def unknown_name(kind: str, name: object, available) -> BnnlibError:
    """The error for a name that is not one of `available`, listing those that are."""
    choices = ", ".join(repr(a) for a in sorted(map(str, available)))
    return BnnlibError(f"unknown {kind} {name!r}; choose one of: {choices}")


def bad_value(name: str, value: object, problem: str, fix: str) -> BnnlibError:
    """One line: the parameter (or an option, when `name` starts with '-'), its value, the fix."""
    shown = repr(value)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    label = f"{name} {shown}" if name.startswith("-") else f"parameter {name} = {shown}"
    return BnnlibError(f"{label} {problem}; {fix}")
