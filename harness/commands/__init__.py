"""CLI subcommands, one module each (``add_arguments`` + ``main``)."""
