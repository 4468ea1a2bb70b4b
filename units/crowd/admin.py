"""Django admin for the crowd side: HITs and their work, annotators, sign-up settings."""
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import (
    Annotation,
    AnnotatorProfile,
    Assignment,
    CrowdSettings,
    Hit,
    HitBatch,
    InviteCode,
    Qualification,
    QualificationAttempt,
    QualificationSettings,
    Skip,
)
from .slots import hit_sync_status


@admin.register(HitBatch)
class HitBatchAdmin(admin.ModelAdmin):
    list_display = ("name", "assignments_per_hit", "reward", "sentinels", "created_at")


class _KeepsHitStatus:
    """An edit here (more assignments, a later expiry, a deleted or changed assignment) may free a slot: the
    HIT's kept status is set again from its slot counts, as every service that frees one does (the claim's
    exact query trusts a REVIEWABLE HIT to be full, see services.MAY_HAVE_FREE_SLOT)."""

    def _hit_of(self, obj) -> Hit:
        return obj if isinstance(obj, Hit) else obj.hit

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _sync(self._hit_of(obj))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        hit = None if isinstance(obj, Hit) else obj.hit
        super().delete_model(request, obj)
        if hit is not None:
            _sync(hit)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        hits = set() if queryset.model is Hit else set(queryset.values_list("hit_id", flat=True))
        super().delete_queryset(request, queryset)
        for hit in Hit.objects.filter(pk__in=hits):
            _sync(hit)


def _sync(hit: Hit) -> None:
    with transaction.atomic():
        locked = Hit.objects.select_for_update().get(pk=hit.pk)
        hit_sync_status(locked, now=timezone.now())


@admin.register(Hit)
class HitAdmin(_KeepsHitStatus, admin.ModelAdmin):
    list_display = ("id", "unit", "kind", "proposed_label", "status", "max_assignments", "is_gold", "expires_at")
    list_filter = ("status", "kind", "label_source", "is_gold", "batch")
    raw_id_fields = ("unit", "batch")


@admin.register(Assignment)
class AssignmentAdmin(_KeepsHitStatus, admin.ModelAdmin):
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
    list_display = ("user", "blocked_at", "flagged_at")
    raw_id_fields = ("user", "invite_code")


@admin.register(Qualification)
class QualificationAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "qualified_at", "qualified_manually_by")
    list_filter = ("project",)
    raw_id_fields = ("user", "qualified_manually_by")


@admin.register(QualificationAttempt)
class QualificationAttemptAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "started_at", "finished_at", "correct", "passed")
    list_filter = ("project",)
    raw_id_fields = ("user",)


admin.site.register(Skip)
admin.site.register(InviteCode)
admin.site.register(CrowdSettings)
admin.site.register(QualificationSettings)
