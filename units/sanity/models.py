"""A sanity-check report: one run of the Mixture-of-digits experiment and what it wrote."""
from django.conf import settings
from django.db import models

from units.dissection.models import DissectionJob


class SanityReport(models.Model):
    """The row is the truth pages read; the engine's report.json is copied into `json`."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    params = models.JSONField(default=dict, blank=True)  # the engine's SanityConfig as a dict
    source = models.CharField(max_length=500, default="digits")  # "digits" or "idx:PATH"
    json = models.JSONField(default=dict, blank=True)  # report.json of the engine run
    files = models.JSONField(default=list, blank=True)  # files written, relative to out_dir
    out_dir = models.CharField(max_length=500, blank=True)  # absolute, or relative to MEDIA_ROOT
    stage = models.CharField(max_length=120, blank=True)
    progress = models.FloatField(default=0.0)  # 0..1
    error_message = models.TextField(blank=True)
    # Jobs registered from this report's runs so their units can be published as HITs.
    jobs = models.ManyToManyField(DissectionJob, blank=True, related_name="sanity_reports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"sanity report {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
