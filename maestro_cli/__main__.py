"""`python -m maestro_cli`: the same as the `maestro` script."""

from maestro_cli.main import main

if __name__ == "__main__":
    main()
