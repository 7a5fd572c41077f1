"""The `maestro` command line: validate, plan, run, init, templates, schema."""
