"""The one exception type users see: a clear message naming the key, file or row and the fix."""


class EkyaError(Exception):
    """A user-facing error; the entry points print its message alone, without a traceback."""
