"""The one exception type the command line turns into a one-line error and a non-zero exit."""


class TLError(Exception):
    """A user-facing error: bad input, a missing file, an impossible request.

    The message must be one line and name the file, row or column at fault.
    """
