"""Project pages, mounted at /projects/."""
from django.urls import path

from . import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("<int:project_id>/", views.project_detail, name="detail"),
    path("<int:project_id>/switch/", views.project_switch, name="switch"),
    path("<int:project_id>/members/", views.member_add, name="member_add"),
    path("<int:project_id>/members/<int:user_id>/role/", views.member_role, name="member_role"),
    path("<int:project_id>/members/<int:user_id>/remove/", views.member_delete, name="member_remove"),
    path("<int:project_id>/delete/", views.project_remove, name="delete"),
    path("<int:project_id>/activity/", views.project_activity, name="activity"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("<int:project_id>/pools/", views.pool_new, name="pool_new"),
    path("<int:project_id>/pools/<int:pool_id>/members/", views.pool_member, name="pool_member"),
    path("pools/join/<str:token>/", views.pool_link, name="pool_join"),
]
