"""Exceptions for mistakes a user can fix.

Every message names the problem and what to do about it. The CLI turns an
:class:`AeclustError` into a one-line message and a non-zero exit; any other
exception is a bug and keeps its traceback.
"""

import difflib


class AeclustError(Exception):
    """Base class for errors caused by input, configuration or environment."""


class DataError(AeclustError, ValueError):
    """Bad or missing data: a wrong path, shape, dtype, value or label."""


class ConfigError(AeclustError, ValueError):
    """A parameter, option or YAML key that does not exist or is out of range."""


class ModelFileError(AeclustError, ValueError):
    """A saved model that is missing, truncated or not written by aeclust."""


class MissingDependencyError(AeclustError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


def _did_you_mean(name: object, valid) -> str:
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(kind: str, name, valid) -> str:
    """Return ``name`` if it is one of ``valid``, else raise ConfigError listing them."""
    valid = tuple(valid)
    if isinstance(name, str) and name in valid:
        return name
    raise ConfigError(
        f"Unknown {kind} {name!r}; choose one of {', '.join(valid)}.{_did_you_mean(name, valid)}"
    )


def check_number(name: str, value, low=0, high=None, integer: bool = False):
    """Return ``value`` if it is a number (an int when ``integer``; never a bool) from
    ``low`` to ``high`` (no upper bound when None), else raise ConfigError naming it."""
    kinds = (int,) if integer else (int, float)
    ok = not isinstance(value, bool) and isinstance(value, kinds) and low <= value
    if ok and (high is None or value <= high):
        return value
    if high is not None:
        want = f"a number in [{low}, {high}]"
    elif integer:
        want = "a positive integer" if low == 1 else f"an integer >= {low}"
    else:
        want = f"a number >= {low}"
    raise ConfigError(f"{name} must be {want}; got {value!r}.")


def check_names(owner: str, names, valid, noun: str = "parameter") -> None:
    """Raise ConfigError naming the first of ``names`` that is not in ``valid``."""
    valid = tuple(valid)
    for name in names:
        if name not in valid:
            options = ", ".join(valid) if valid else "none"
            raise ConfigError(
                f"Unknown {noun} {name!r} for {owner}; valid {noun}s: {options}."
                f"{_did_you_mean(name, valid)}"
            )


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise with the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module}', which is not installed. "
            f"Install it with: pip install 'aeclust[{extra}]'"
        ) from exc
