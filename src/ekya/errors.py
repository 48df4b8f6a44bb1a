"""The one exception type users see: a clear message naming the key, file or row and the fix."""

from __future__ import annotations


class EkyaError(Exception):
    """A user-facing error; the entry points print its message alone, without a traceback."""


def user_error(error: BaseException) -> str | None:
    """The one-line message of a user error, however deeply wrapped (Hydra's instantiate wraps them), else None.

    User errors are EkyaError, and OmegaConf's errors about the config itself (a required key left
    ``???``, a key that does not exist, a value of the wrong type).
    """
    from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, EkyaError):
            return str(e)
        if isinstance(e, MissingMandatoryValue):
            key = getattr(e, "full_key", None) or "a key"
            return f"{key} is required and has no value; pass {key}=VALUE"
        if isinstance(e, (ConfigKeyError, ValidationError)):
            return (str(e).splitlines()[0]
                    + "; check the key's name and value (python -m ekya --cfg job prints the config)")
        e = e.__cause__ or e.__context__
    return None
