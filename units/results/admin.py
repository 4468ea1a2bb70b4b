from django.contrib import admin

from .models import AggregationRun, AnnotatorSkill, ExportJob, SynonymEntry, UnitAggregate, UnitVerification
from .normalize import normalize_word


@admin.register(SynonymEntry)
class SynonymEntryAdmin(admin.ModelAdmin):
    list_display = ["word", "target", "dataset", "created_by", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["word", "target"]

    def save_model(self, request, obj, form, change):
        # Stored normalised, as the synonym service does, so matching finds them.
        obj.word, obj.target = normalize_word(obj.word), normalize_word(obj.target)
        obj.created_by = obj.created_by or request.user
        super().save_model(request, obj, form, change)


@admin.register(UnitAggregate)
class UnitAggregateAdmin(admin.ModelAdmin):
    list_display = ["unit", "crowd_word", "word_probability", "category", "category_probability", "category_mv",
                    "n_annotations", "precision", "interpretable"]
    list_filter = ["interpretable", "category", "unit__layer"]
    raw_id_fields = ["unit", "run"]


@admin.register(UnitVerification)
class UnitVerificationAdmin(admin.ModelAdmin):
    list_display = ["unit", "source", "label", "n_yes", "n_no", "n_unsure", "accepted_mv", "accepted_ds"]
    list_filter = ["source", "accepted_mv", "unit__layer"]
    raw_id_fields = ["unit", "run"]


@admin.register(AggregationRun)
class AggregationRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "layer", "batch", "method", "status", "n_units", "n_annotations", "alpha", "finished_at"]
    list_filter = ["status"]


@admin.register(AnnotatorSkill)
class AnnotatorSkillAdmin(admin.ModelAdmin):
    list_display = ["worker", "gold_answered", "gold_accuracy", "skill", "updated_at"]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "status", "progress", "file", "created_at"]
    list_filter = ["kind", "status"]
