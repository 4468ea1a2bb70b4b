app_name = "crowd"
urlpatterns: list = []
