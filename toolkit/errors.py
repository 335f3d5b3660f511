"""The one exception type for user errors."""


class MlkitError(Exception):
    """Bad input or an unmet precondition; the message says what to do.

    The CLI prints the message (never a traceback) and exits with ``exit_code``.
    """

    exit_code = 2
