"""Django admin for the compute side. Registering goes through the services (checks, vocabulary)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .models import Concept, DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit, UnitConceptScore
from .services import DatasetSource, DissectionError, NetworkInput, dataset_register, job_start, network_register


class _RegisteringForm(forms.ModelForm):
    """On "add", the service registers the row during validation, so its refusal is a form error.

    The admin's add view runs in one transaction, so nothing stays if a later step fails.
    """

    registered = None

    def register(self, data: dict) -> Model:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.instance.pk is None and not self.errors:
            try:
                self.registered = self.register(data)
            except DissectionError as exc:
                raise forms.ValidationError(str(exc)) from None
            # The model's constraint checks (a name unique in its project) come after clean(): the
            # instance stands for the service's row, so they do not find that row as a duplicate.
            self.instance.pk, self.instance._state.adding = self.registered.pk, False
        return data

    def validate_unique(self) -> None:
        if self.registered is None:  # the service checked names already; the row exists now
            super().validate_unique()

class NetworkAdminForm(_RegisteringForm):
    class Meta:
        model = Network
        fields = [
            "project",
            "name",
            "architecture",
            "checkpoint",
            "num_classes",
            "class_names",
            "mean",
            "std",
            "description",
        ]

    def register(self, data: dict) -> Model:
        upload = data.get("checkpoint")
        return network_register(
            project=data["project"], name=data["name"], architecture=data["architecture"], checkpoint=upload or None,
            checkpoint_size=getattr(upload, "size", None),
            inputs=NetworkInput(num_classes=data.get("num_classes"), class_names=data.get("class_names") or (),
                                mean=data.get("mean") or (), std=data.get("std") or ()),
            description=data.get("description", ""), created_by=getattr(self, "user", None),
        )


class ProbeDatasetAdminForm(_RegisteringForm):
    class Meta:
        model = ProbeDataset
        fields = ["project", "name", "kind", "path", "image_size", "description"]

    def register(self, data: dict) -> Model:
        return dataset_register(
            project=data["project"],
            name=data["name"],
            kind=data["kind"],
            source=DatasetSource(path=data["path"]),
            image_size=data.get("image_size"),
            description=data.get("description", ""),
            created_by=getattr(self, "user", None),
            # Superusers run the server (as with register_dataset); staff keep to the dataset folders.
            any_path=bool(getattr(getattr(self, "user", None), "is_superuser", False)),
        )


def _adopt(obj: Model, registered: Model) -> None:
    """Make the admin's unsaved object stand for the row the service created."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(registered, field.attname))
    obj._state.adding = False


class _RegisteringAdmin(admin.ModelAdmin):
    """Adding a row goes through the registering form's service; editing saves as usual."""

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        _adopt(obj, form.registered)


@admin.register(Network)
class NetworkAdmin(_RegisteringAdmin):
    form = NetworkAdminForm
    list_display = ["name", "architecture", "num_classes", "checkpoint", "created_at"]
    search_fields = ["name"]


class ConceptInline(admin.TabularInline):
    model = Concept
    extra = 0
    readonly_fields = ["number", "name", "category"]
    can_delete = False


@admin.register(ProbeDataset)
class ProbeDatasetAdmin(_RegisteringAdmin):
    list_display = ["name", "kind", "path", "num_images", "created_at"]
    search_fields = ["name"]
    form = ProbeDatasetAdminForm
    readonly_fields = ["num_images", "categories", "meta"]
    inlines = [ConceptInline]

    def get_inlines(self, request: HttpRequest, obj: Model | None) -> list:
        return self.inlines if obj is not None else []  # the vocabulary is read from the dataset files


@admin.action(description="Start (or re-run) the selected jobs")
def start_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for job in queryset:
        try:
            job_start(job=job)
        except DissectionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Job {job.pk} queued.")


@admin.register(DissectionJob)
class DissectionJobAdmin(admin.ModelAdmin):
    list_display = ["id", "network", "dataset", "status", "stage", "progress", "attempts", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["status", "stage", "progress", "timings", "error_message", "output_dir", "attempts",
                       "started_at", "finished_at"]
    actions = [start_jobs]


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "name", "num_units"]
    list_filter = ["name"]


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["id", "layer", "index", "iou_label", "iou_category", "iou_score", "max_activation", "is_gold"]
    list_filter = ["is_gold", "iou_category"]
    search_fields = ["iou_label", "gold_word"]
    list_select_related = ["layer__job__network"]


@admin.register(Exemplar)
class ExemplarAdmin(admin.ModelAdmin):
    list_display = ["id", "unit", "kind", "rank", "image_name", "score"]
    list_filter = ["kind"]
    list_select_related = ["unit__layer__job__network"]
    raw_id_fields = ["unit"]


@admin.register(UnitConceptScore)
class UnitConceptScoreAdmin(admin.ModelAdmin):
    list_display = ["unit", "rank", "concept", "iou"]
    raw_id_fields = ["unit", "concept"]
