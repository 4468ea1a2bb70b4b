app_name = "sanity"
urlpatterns: list = []
