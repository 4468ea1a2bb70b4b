"""Media files (exemplar pictures, strips, reports) are served only to signed-in users."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.views.static import serve


@login_required
def protected_media(request, path: str):
    # django.views.static.serve refuses paths that leave MEDIA_ROOT.
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "private, max-age=3600"
    return response
