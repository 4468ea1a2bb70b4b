"""The paint page in a real browser: paint cells with the keyboard, remove units, see the engine's edit;
a refusal shows as an alert without a reload."""
import base64
import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from tests.dissection.gan_helpers import make_finished_generator_job
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def decoded(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def test_a_requester_paints_with_the_keyboard_and_sees_the_engines_edit(live_server, page, media_root, tmp_path):
    from tasks.engine.gan.edit import Latent, edit_image
    from tasks.engine.gan.models import load_generator

    job = make_finished_generator_job(tmp_path)
    make_user("paula", requester=True)
    page.goto(f"{live_server.url}{reverse('login')}")
    page.fill("#id_username", "paula")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}{reverse('dissection:paint', args=[job.pk])}")

    page.fill("#id_units", "2, 9")
    page.focus('input[name="cell"][value="2,2"]')
    page.keyboard.press("Space")        # paint row 3, column 3
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")        # and row 3, column 4
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")        # and row 4, column 4
    assert page.locator('input[name="cell"]:checked').count() == 3
    page.focus("#paint-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-paint-result]:not([hidden])")
    after = page.get_attribute("[data-after]", "src")
    assert page.url.endswith(f"/jobs/{job.pk}/paint/")  # no reload: the JSON endpoint answered
    grid = np.zeros((8, 8), dtype=bool)
    grid[2, 2] = grid[2, 3] = grid[3, 3] = True
    expected = edit_image(load_generator(checkpoint=job.network.checkpoint.path), layer="layer2", units=[1, 8],
                          mode="remove", latent=Latent(seed=0), region=np.kron(grid, np.ones((4, 4), dtype=bool)))
    assert np.array_equal(decoded(after), expected.after)
    links = page.locator("[data-units] a")
    assert links.count() == 2 and re.search(r"/units/\d+/$", links.first.get_attribute("href"))

    page.fill("#id_units", "99")
    page.click("#paint-form button[type=submit]")
    page.wait_for_selector("[data-paint-error]:not([hidden])")
    assert "Unknown unit(s) 99" in page.inner_text("[data-paint-error]")
