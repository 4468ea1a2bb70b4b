"""Fixtures shared by the whole suite: the personas (an annotator, another annotator, a requester, an admin) and one
tiny mixture dataset per test session."""
import os
import shutil

import pytest

from tests.factories import make_user, write_tiny_mixture


def services_required() -> bool:
    """In CI (UNITCROWD_REQUIRE_SERVICES=1) a missing service is a failure, not a skip."""
    return os.environ.get("UNITCROWD_REQUIRE_SERVICES") == "1"


def need_service(available: bool, what: str) -> None:
    if available:
        return
    if services_required():
        pytest.fail(f"{what} is required here (UNITCROWD_REQUIRE_SERVICES=1) but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """DRF's throttles count in the cache; one test's requests must not throttle the next test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def annotator(db):
    return make_user("annie", qualified=True)


@pytest.fixture
def other_annotator(db):
    return make_user("otto", qualified=True)


@pytest.fixture
def requester(db):
    return make_user("rita", requester=True)


@pytest.fixture
def admin(db):
    return make_user("adam", admin=True)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SENDFILE_ROOT = str(settings.MEDIA_ROOT)  # django-sendfile2 sends only from here
    settings.MEDIA_ROOT.mkdir()
    yield settings.MEDIA_ROOT
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture
def pending_at_state(monkeypatch):
    """Records, for every RunningQuantile.state_dict call, whether the kept set had overflowed and
    how many newcomers were still buffered, and whether in inference mode: the in-place path the state's
    flush then takes. Tests of that path assert it was taken, so that their data cannot drift off it."""
    import torch

    from tasks.engine.runningstats import RunningQuantile

    seen: list[tuple[bool, int, bool]] = []
    original = RunningQuantile.state_dict

    def spy(self):
        seen.append((self.dropped, self._pending_cols, torch.is_inference_mode_enabled()))
        return original(self)

    monkeypatch.setattr(RunningQuantile, "state_dict", spy)
    return seen


@pytest.fixture(scope="session")
def tiny_mixture_dir(tmp_path_factory):
    return write_tiny_mixture(tmp_path_factory.mktemp("mixture") / "tiny")
