"""Crowd pages: annotators' work under /crowd/, requesters' review and settings under /crowd/review/."""
from django.urls import path

from .views import channels, external, review, work

app_name = "crowd"
urlpatterns = [
    path("", work.home, name="home"),
    path("instructions/", work.instructions, name="instructions"),
    path("qualification/", work.qualification, name="qualification"),
    path("qualification/<int:project_id>/", work.qualification_test, name="qualification_test"),
    path("next/", work.next_assignment, name="next"),
    path("assignments/<int:pk>/", work.work, name="work"),
    path("assignments/<int:pk>/return/", work.return_assignment, name="return"),
    path("assignments/<int:pk>/skip/", work.skip_hit, name="skip"),
    path("skips/<int:pk>/undo/", work.undo_skip, name="undo_skip"),
    path("assignments/<int:pk>/retake/", work.retake_assignment, name="retake"),
    path("assignments/<int:pk>/extend/", work.extend_assignment, name="extend"),
    path("review/", review.review_list, name="review_list"),
    path("review/hits/<int:pk>/", review.review_hit, name="review_hit"),
    path("review/decide/", review.review_decide, name="review_decide"),
    path("review/annotators/", review.annotators, name="annotators"),
    path("review/annotators/<int:pk>/", review.annotator_action, name="annotator_action"),
    path("review/settings/", review.crowd_settings, name="settings"),
    path("review/settings/invites/", review.invite_create, name="invite_create"),
    path("review/settings/invites/<int:pk>/deactivate/", review.invite_deactivate, name="invite_deactivate"),
    path("review/gold/", review.gold, name="gold"),
    path("mturk/hits/<int:pk>/", external.mturk_hit, name="mturk_hit"),
    path("prolific/<int:batch_id>/", external.prolific_study, name="prolific_study"),
    path("review/projects/<int:project_id>/channels/", channels.channel_settings, name="channels"),
    path("review/batches/<int:pk>/expire/", channels.batch_expire_view, name="batch_expire"),
]
