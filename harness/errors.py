"""Errors the CLI turns into exit codes (DESIGN.md "CLI")."""


class BadInput(Exception):
    """Bad input or usage: the CLI prints the message on one line and exits 2.

    The message must name the offending thing (a path, a flag, a field).
    """


EXIT_OK = 0  # accepted / clean
EXIT_REJECTED = 1  # rejected, or audit findings at error level
EXIT_BAD_INPUT = 2  # bad input or usage
