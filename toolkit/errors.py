"""The one exception type for user errors, and its kind for a parameter out of range."""

from __future__ import annotations


class MlkitError(Exception):
    """Bad input or an unmet precondition; the message says what to do.

    The CLI prints the message (never a traceback) and exits with ``exit_code``.
    """

    exit_code = 2


class ParameterError(MlkitError, ValueError):
    """A parameter outside what it accepts. The message names the parameter and the value
    received, as Keras' errors do ("`workers` must be at least 1. Received: workers=0").

    ``flag``: the command-line option that sets it (default ``--`` + the name with dashes;
    "" for none). The message names it too, and the CLI shows ``command_line()`` instead,
    in the words of its flags."""

    def __init__(self, param: str, value: object, requirement: str, *, flag: str | None = None) -> None:
        self.param, self.value, self.requirement = param, value, requirement
        self.flag = "--" + param.replace("_", "-") if flag is None else flag
        named = f"`{param}` ({self.flag})" if self.flag else f"`{param}`"
        super().__init__(f"{named} {requirement}. Received: {param}={value!r}")

    def command_line(self) -> str:
        """The message as a command-line user reads it: the flag, and the value as typed."""
        if not self.flag:
            return str(self)
        return f"{self.flag} {self.requirement}. Received: {self.flag} {self.value}"
