"""Exceptions for mistakes a user can fix.

Every error a user can cause (a missing file, a bad argument, a corrupt
download) is raised as a subclass of :class:`UserError` whose message names the
file or argument and says what to do. The ``srgan`` command prints such an error
as one line on stderr and exits with code 2; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class ImageReadError(UserError, ValueError):
    """A file could not be read as an image (not an image, truncated, unsupported)."""


class DataError(UserError, ValueError):
    """A dataset folder or a dataset argument is unusable."""


class ConfigError(UserError, ValueError):
    """A configuration value or command-line argument is invalid."""


class DownloadError(UserError, OSError):
    """A download failed, or an archive did not match its recorded checksum."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, or does not fit the request."""
