"""Measurements, one module per benchmark, run as ``paperscope bench <name>`` (see commands)."""
