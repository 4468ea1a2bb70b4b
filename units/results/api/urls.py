"""API routes of results: aggregated labels, aggregation runs, comparisons, exports and synonyms."""
from rest_framework.routers import SimpleRouter

from . import verification, views

router = SimpleRouter()
router.register("labels", views.LabelViewSet, basename="api-label")
router.register("aggregation-runs", views.AggregationRunViewSet, basename="api-aggregation-run")
router.register("comparisons", views.ComparisonViewSet, basename="api-comparison")
router.register("exports", views.ExportViewSet, basename="api-export")
router.register("synonyms", views.SynonymViewSet, basename="api-synonym")
router.register("verifications", verification.VerificationViewSet, basename="api-verification")

urlpatterns = router.urls
