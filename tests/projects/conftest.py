"""Fixtures of the project tests."""
import pytest

from tests.factories import write_tiny_mixture


@pytest.fixture(scope="session")
def tiny_mixture_dir(tmp_path_factory):
    return write_tiny_mixture(tmp_path_factory.mktemp("mixture") / "tiny")
