"""`harness audit` (being built; its owner replaces this module)."""

from harness.errors import BadInput


def configure(parser):
    pass


def run(args) -> int:
    raise BadInput("harness audit is not built yet")
