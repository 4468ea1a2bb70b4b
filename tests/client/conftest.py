"""Fixtures of the client tests: the real app on a live server, a requester who logs in with a password."""
import pytest

from tests.factories import PASSWORD, make_user


@pytest.fixture
def rita(transactional_db):
    return make_user("rita", requester=True)


@pytest.fixture
def uc(live_server, rita):
    from unitcrowd_client import UnitCrowd

    with UnitCrowd(live_server.url, username="rita", password=PASSWORD, backoff=0.05) as client:
        yield client


@pytest.fixture(scope="session")
def tiny_mixture_dir(tmp_path_factory):
    from tests.factories import write_tiny_mixture

    return write_tiny_mixture(tmp_path_factory.mktemp("mixture") / "tiny")
