"""Exceptions for mistakes a user can fix.

Every message names the problem and what to do about it. The CLI turns an
:class:`AeclustError` into a one-line message and a non-zero exit; any other
exception is a bug and keeps its traceback.
"""


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
