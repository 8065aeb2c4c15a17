"""`harness run` (being built; its owner replaces this module)."""

from harness.errors import BadInput


def configure(parser):
    pass


def run(args) -> int:
    raise BadInput("harness run is not built yet")
