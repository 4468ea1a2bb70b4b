"""`python -m benchmarks.loadtest [options]`: the load benchmark (options: `--help`)."""
import sys

from benchmarks.site import setup_django

setup_django()

from benchmarks.loadtest.command import Command  # noqa: E402  (models load once the apps are set up)

Command().run_from_argv(["python -m benchmarks.loadtest", "", *sys.argv[1:]])
