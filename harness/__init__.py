"""pgolf harness: trusted evaluation core for Parameter Golf style submissions."""

__version__ = "0.1.0"
