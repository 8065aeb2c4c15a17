"""`harness eval` (being built; its owner replaces this module)."""

from harness.errors import BadInput


def configure(parser):
    pass


def run(args) -> int:
    raise BadInput("harness eval is not built yet")
