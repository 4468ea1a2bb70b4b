"""API routes for HIT batches, HITs, assignments, annotations, aggregated labels, comparisons and exports."""
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("hit-batches", api.HitBatchViewSet, basename="api-hit-batch")
router.register("hits", api.HitViewSet, basename="api-hit")
router.register("assignments", api.AssignmentViewSet, basename="api-assignment")
router.register("annotations", api.AnnotationViewSet, basename="api-annotation")
router.register("labels", api.LabelViewSet, basename="api-label")
router.register("aggregation-runs", api.AggregationRunViewSet, basename="api-aggregation-run")
router.register("comparisons", api.ComparisonViewSet, basename="api-comparison")
router.register("exports", api.ExportViewSet, basename="api-export")
router.register("synonyms", api.SynonymViewSet, basename="api-synonym")

urlpatterns = router.urls
