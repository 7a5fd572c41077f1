"""What a compiled op does when it runs: gate, render, check policy and budget, call, report.

Dagster stays at the edges: templates, timeouts, error kinds and redaction are plain Python.
"""
