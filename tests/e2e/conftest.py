"""Browser fixtures: Playwright driving Debian's Chromium (headless, never a downloaded browser), a small
site with pictures, logging in, and an axe-core check (axe-playwright-python bundles axe-core)."""
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import get_resolver

from tests.conftest import need_service
from tests.factories import PASSWORD, make_hits, make_job
from units.crowd.models import CrowdSettings, QualificationSettings
from units.dissection.models import Unit

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser(monkeypatch):
    need_service(Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM}")
    # Playwright's sync API keeps an event loop in this thread; our ORM calls here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # Import every view module now (some pull in torch): the first page load must not pay for it.
    _ = get_resolver().url_patterns
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


# Every page records what its Content-Security-Policy blocked (the browser's own report), for
# `csp_violations(page)`: a blocked script or style is a broken page.
_WATCH_CSP = """document.addEventListener("securitypolicyviolation", function (e) {
  (window.__cspViolations = window.__cspViolations || []).push(
    e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});"""


def _context(browser, viewport, **kwargs):
    context = browser.new_context(viewport=viewport, **kwargs)
    context.add_init_script(_WATCH_CSP)
    # Generous limits: a loaded 2-core CI machine can be slow, and a timeout here is never a real answer.
    context.set_default_timeout(30000)
    context.set_default_navigation_timeout(60000)
    return context


@pytest.fixture
def page(browser):
    return _context(browser, DESKTOP).new_page()


@pytest.fixture
def phone(browser):
    return _context(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2).new_page()


@pytest.fixture
def site(media_root):
    job = make_job(layers={"conv3": 5}, exemplars_per_unit=6, write_pictures=True)
    make_hits(job, assignments=2)
    # Two gold units (digits 0 and 1) make the qualification test.
    for unit in Unit.objects.filter(layer__job=job, index__lt=2):
        unit.is_gold, unit.gold_word, unit.gold_category = True, f"{unit.index}", "object"
        unit.save()
    CrowdSettings.objects.update_or_create(pk=1, defaults={"gold_rate": 0.0})
    QualificationSettings.objects.update_or_create(project=job.project, defaults={"size": 2, "pass_fraction": 1.0})
    return job


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/(crowd|jobs)/"))


def current_assignment_id(page) -> int:
    return int(re.search(r"/crowd/assignments/(\d+)/", page.url).group(1))


def start_working(page) -> int:
    page.click("#start-working")
    page.wait_for_url(re.compile(r"/crowd/assignments/\d+/"))
    return current_assignment_id(page)


def answer_confirm(page, *, accept: bool) -> str:
    """The HIT page's own question before return or skip (crowd/confirm.js): its text, after pressing the
    action's button (`accept`) or Cancel. Cancel holds the focus when it opens."""
    page.wait_for_selector("#confirm-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    text = page.inner_text("#confirm-text")
    page.click("#confirm-ok" if accept else "#confirm-cancel")
    return text


def csp_violations(page) -> list[str]:
    """What the page's Content-Security-Policy blocked since it loaded."""
    return page.evaluate("window.__cspViolations || []")


# Rules checked whatever impact axe gives them: each was found on a page once (a select without a name,
# a page without a language, two unnamed navigation bars, a skipped heading level, a page without an
# <h1>, an empty table header).
ALWAYS_RULES = {"select-name", "html-has-lang", "landmark-unique", "heading-order", "page-has-heading-one",
                "empty-table-header"}


def axe_violations(page, *, only: set[str] | None = None) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now, and any of ALWAYS_RULES, one
    line each; `only`: just these rules (a page we do not write, such as Swagger UI's)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"]})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if (v["id"] in only if only is not None else v["impact"] in ("serious", "critical") or v["id"] in ALWAYS_RULES)
    ]


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
