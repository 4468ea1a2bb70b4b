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

