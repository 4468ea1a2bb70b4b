"""The Mixture-of-digits sanity check: train the variants of MixtureNet and of the seed's network,
measure their units against the true digits, and write the report (pipeline -> measure -> summary ->
report/render/plots)."""
from .pipeline import (
    SanityConfig,
    add_arguments,
    add_cli_arguments,
    config_from_args,
    estimate_minutes,
    main,
    run_cli,
    run_sanity,
)

__all__ = [
    "SanityConfig",
    "add_arguments",
    "add_cli_arguments",
    "config_from_args",
    "estimate_minutes",
    "main",
    "run_cli",
    "run_sanity",
]
