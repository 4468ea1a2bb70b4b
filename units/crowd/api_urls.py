"""API routes of the crowd flow (token auth, next assignment, submit, return)."""
urlpatterns: list = []
