"""Django admin for the crowd side: HITs and their work, annotators, sign-up settings."""
from django.contrib import admin

from .models import (
    Annotation,
    AnnotatorProfile,
    Assignment,
    CrowdSettings,
    Hit,
    HitBatch,
    InviteCode,
    QualificationAttempt,
    Skip,
)


@admin.register(HitBatch)
class HitBatchAdmin(admin.ModelAdmin):
    list_display = ("name", "assignments_per_hit", "reward", "sentinels", "created_at")


@admin.register(Hit)
class HitAdmin(admin.ModelAdmin):
    list_display = ("id", "unit", "kind", "proposed_label", "status", "max_assignments", "is_gold", "expires_at")
    list_filter = ("status", "kind", "label_source", "is_gold", "batch")
    raw_id_fields = ("unit", "batch")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "hit", "worker", "status", "accepted_at", "deadline", "submitted_at")
    list_filter = ("status",)
    raw_id_fields = ("hit", "worker")


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("id", "assignment", "word", "category", "confidence", "gold_correct", "sentinels_missed")
    list_filter = ("category", "gold_correct")
    raw_id_fields = ("assignment", "non_fitting")


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "qualified_at", "blocked_at", "flagged_at")
    raw_id_fields = ("user", "qualified_manually_by", "invite_code")


@admin.register(QualificationAttempt)
class QualificationAttemptAdmin(admin.ModelAdmin):
    list_display = ("user", "started_at", "finished_at", "correct", "passed")
    raw_id_fields = ("user",)


admin.site.register(Skip)
admin.site.register(InviteCode)
admin.site.register(CrowdSettings)
