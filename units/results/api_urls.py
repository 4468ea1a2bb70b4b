"""API routes for aggregated labels, comparisons and exports."""
urlpatterns: list = []
