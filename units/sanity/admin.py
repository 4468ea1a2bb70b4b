"""Django admin for sanity reports: read-only (a report is made by its run, not by hand)."""
from django.contrib import admin

from .models import SanityReport


@admin.register(SanityReport)
class SanityReportAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "source", "stage", "progress", "created", "created_by"]
    list_filter = ["status"]
    readonly_fields = ["status", "params", "source", "json", "files", "out_dir", "stage", "progress", "created",
                       "created_by"]

    def has_add_permission(self, request) -> bool:
        return False
