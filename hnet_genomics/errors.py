"""One exception family so the CLI can turn user mistakes into a one-line error and a non-zero exit."""


class HNetError(Exception):
    """A problem with the user's input (config, file, argument) rather than a bug."""


class ConfigError(HNetError, ValueError):
    """Unknown key, wrong type or inconsistent model/training settings."""


class DataError(HNetError, ValueError):
    """Unreadable or malformed genome / interval / task file; the message names file and line."""


class CheckpointError(HNetError, ValueError):
    """A checkpoint or model directory that is missing, corrupt or does not match the config."""


class OutputError(HNetError, ValueError):
    """An output path that cannot be written, or whose writing would delete files this package did not write."""


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler's kill, ``timeout``): unwinds like Ctrl-C so every temporary is removed.

    A BaseException, so ``except Exception`` blocks cannot swallow it.
    """
