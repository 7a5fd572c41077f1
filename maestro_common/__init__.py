"""What the language core (`yaml_compiler`) and the plugins (`resources`) both need.

The bottom layer: it imports nothing of Maestro's and no Dagster, so either side may use it
without importing the other (tests/test_layers.py keeps it that way).
"""
