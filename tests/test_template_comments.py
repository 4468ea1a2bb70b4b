"""Django's {# #} comment ends at the end of its line: one spread over lines is printed on the page."""
from pathlib import Path

from django.conf import settings


def test_no_template_has_a_one_line_comment_spread_over_lines():
    spread = []
    for path in sorted((Path(settings.BASE_DIR) / "templates").rglob("*.html")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "{#" in line and "#}" not in line.split("{#", 1)[1]:
                spread.append(f"{path.relative_to(settings.BASE_DIR)}:{number}")
    assert spread == [], "use {% comment %} ... {% endcomment %} for comments over several lines"
