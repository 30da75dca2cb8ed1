"""The `planarpy` command. Each module here with a `register(subparsers)` adds subcommands."""
