"""One module per `receiver` subcommand, each with `register(subparsers)`."""
