"""API routes for networks, datasets, jobs, layers, units (platform)."""
urlpatterns: list = []
