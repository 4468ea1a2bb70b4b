"""API representations of networks, datasets, jobs, layers, units and exemplars."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from units.dissection.models import (
    Concept, DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit, UnitConceptScore,
)
from units.projects.api.fields import ProjectField, ScopedRelatedField


class NetworkSerializer(serializers.ModelSerializer):
    project = ProjectField()
    checkpoint = serializers.FileField(required=False, allow_null=True, use_url=False)
    # Lists, so that a multipart upload may repeat the field (mean=0.5&mean=0.5&mean=0.5) as a JSON body lists it.
    class_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                        help_text="The classifier's class names in output order (optional).")
    mean = serializers.ListField(child=serializers.FloatField(), required=False, max_length=3,
                                 help_text="Per-channel input mean in 0..1 units (default: the architecture's).")
    std = serializers.ListField(child=serializers.FloatField(), required=False, max_length=3,
                                help_text="Per-channel input std in 0..1 units (default: the architecture's).")

    class Meta:
        model = Network
        fields = ["id", "project", "name", "kind", "architecture", "checkpoint", "num_classes", "class_names", "mean",
                  "std", "input_size", "description", "created_at"]
        read_only_fields = ["id", "kind", "created_at"]
        extra_kwargs = {"name": {"validators": []}}  # the service reports a taken name itself


class ConceptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Concept
        fields = ["number", "name", "category"]


class DatasetSerializer(serializers.ModelSerializer):
    project = ProjectField()
    archive = serializers.FileField(write_only=True, required=False, help_text="A zip of the dataset folder.")
    path = serializers.CharField(required=False, allow_blank=True, max_length=500)
    num_concepts = serializers.IntegerField(read_only=True, required=False)
    categories = serializers.ListField(child=serializers.CharField(), read_only=True,
                                       help_text="The dataset's concept categories (object, part, scene, ...).")

    class Meta:
        model = ProbeDataset
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "path",
            "archive",
            "image_size",
            "num_images",
            "categories",
            "num_concepts",
            "description",
            "created_at",
        ]
        read_only_fields = ["id", "num_images", "categories", "created_at"]
        extra_kwargs = {"name": {"validators": []}}


@extend_schema_field({
    "type": "object",
    "description": "Seconds per stage of the run (total, results, render, ...) and the names of skipped images.",
    "properties": {"skipped_images": {"type": "array", "items": {"type": "string"}}},
    "additionalProperties": {"type": "number"},
})
class JobTimingsField(serializers.JSONField):
    """The job's `timings` as stored; the schema says what it holds."""


class JobSerializer(serializers.ModelSerializer):
    timings = JobTimingsField(read_only=True)
    token_grid = serializers.CharField(required=False, allow_blank=True, default="", max_length=16,
                                       help_text="HEIGHTxWIDTH, e.g. 14x20: the grid of token layers whose tokens "
                                                 "(less class/register tokens) are no square grid.")
    start = serializers.BooleanField(write_only=True, required=False, default=False,
                                     help_text="Queue the job right away.")
    layers = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False)
    # Ids of the caller's projects only (where they may dissect); another project's id "does not exist".
    network = ScopedRelatedField(queryset=Network.objects.all())
    dataset = ScopedRelatedField(queryset=ProbeDataset.objects.all())

    class Meta:
        model = DissectionJob
        fields = ["id", "kind", "network", "dataset", "layers", "top_k", "quantile", "iou_rule", "batch_size",
                  "token_grid", "shards", "samples", "sample_seed", "status", "stage", "progress", "error_message",
                  "timings", "attempts", "created_at", "started_at", "finished_at", "start"]
        read_only_fields = ["id", "kind", "status", "stage", "progress", "error_message", "timings", "attempts",
                            "created_at", "started_at", "finished_at"]


class JobStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    stage = serializers.CharField()
    progress = serializers.FloatField(help_text="0..1")
    error = serializers.CharField()
    finished = serializers.BooleanField()


class LayerPlanSerializer(serializers.Serializer):
    """One layer of a dissection's plan: its maps, and spill or recompute within the budgets."""

    layer = serializers.CharField()
    units = serializers.IntegerField()
    map_shapes = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                                       help_text="[height, width] of the maps per image size")
    values_per_image = serializers.IntegerField()
    spill_bytes_float32 = serializers.IntegerField()
    spill_bytes_float16 = serializers.IntegerField()
    exact_quantile_bytes = serializers.IntegerField()
    counts_bytes = serializers.IntegerField()
    method = serializers.CharField(help_text="spill or recompute")
    dtype = serializers.CharField()
    threshold = serializers.CharField(help_text="exact, radix or given")
    reading = serializers.CharField(help_text="how the layer's output is read as maps")
    spill_bytes = serializers.IntegerField(required=False)
    quantile_bytes = serializers.IntegerField(required=False)


class DissectPlanSerializer(serializers.Serializer):
    """The plan a dissection followed (or would follow): passes, disk and memory."""

    images = serializers.IntegerField()
    batches = serializers.IntegerField()
    layers = LayerPlanSerializer(many=True)
    disk_budget = serializers.IntegerField()
    memory_budget = serializers.IntegerField()
    labels_bytes = serializers.IntegerField()
    passes = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField())
    disk_bytes = serializers.IntegerField()
    memory_bytes = serializers.IntegerField()
    spilled = serializers.ListField(child=serializers.CharField())
    recomputed = serializers.ListField(child=serializers.CharField())
    spills_labels = serializers.BooleanField()
    measured_spill_bytes = serializers.IntegerField(required=False)


class LayerSummarySerializer(serializers.Serializer):
    """The engine's summary of one dissected layer (its summary.json); labelled datasets add the IoU figures.
    Every key is optional: a generator's layers and layers made before a key existed lack some."""

    layer = serializers.CharField(required=False)
    units = serializers.IntegerField(required=False)
    images = serializers.IntegerField(required=False)
    skipped_images = serializers.IntegerField(required=False)
    quantile = serializers.FloatField(required=False)
    thresholds_from = serializers.CharField(help_text="quantile or given", required=False)
    top_k = serializers.IntegerField(required=False)
    unit_numbering = serializers.CharField(required=False)
    labelled = serializers.BooleanField(required=False)
    iou_rule = serializers.CharField(required=False)
    interpretable_threshold = serializers.FloatField(required=False)
    interpretable_units = serializers.IntegerField(allow_null=True, required=False)
    unique_concepts = serializers.IntegerField(allow_null=True, required=False)
    unique_detectors_per_category = serializers.DictField(child=serializers.IntegerField(), required=False)
    units_per_category = serializers.DictField(child=serializers.IntegerField(), required=False)
    line = serializers.CharField(required=False)
    reading = serializers.CharField(required=False, help_text="how the layer's output was read as maps")
    plan = DissectPlanSerializer(required=False, allow_null=True)
    timings = serializers.DictField(child=serializers.FloatField(), required=False, help_text="seconds per stage")
    skipped_image_names = serializers.ListField(child=serializers.CharField(), required=False)


@extend_schema_field(LayerSummarySerializer)
class LayerSummaryField(serializers.JSONField):
    """The layer's `summary` as stored; the schema says what it holds."""


class LayerSerializer(serializers.ModelSerializer):
    summary = LayerSummaryField(read_only=True)

    class Meta:
        model = Layer
        fields = ["id", "job", "name", "num_units", "summary"]


class ConceptScoreSerializer(serializers.ModelSerializer):
    concept = ConceptSerializer()

    class Meta:
        model = UnitConceptScore
        fields = ["rank", "concept", "iou"]


class UnitSerializer(serializers.ModelSerializer):
    layer_name = serializers.CharField(source="layer.name", read_only=True)
    job = serializers.IntegerField(source="layer.job_id", read_only=True)
    is_dead = serializers.BooleanField(read_only=True)
    top_concepts = ConceptScoreSerializer(source="concept_scores", many=True, read_only=True)
    unit_number = serializers.SerializerMethodField(help_text="The unit's number counted from 1, as on the pages "
                                                    "and in tally.csv.")

    def get_unit_number(self, obj: Unit) -> int:
        return obj.index + 1

    class Meta:
        model = Unit
        extra_kwargs = {"index": {"help_text": "The unit's channel index counted from 0 (unit_number - 1)."}}
        fields = ["id", "job", "layer", "layer_name", "unit_number", "index", "threshold", "max_activation", "is_dead",
                  "iou_label", "iou_category", "iou_score", "strip", "is_gold", "gold_word", "gold_category",
                  "top_concepts"]


class ExemplarSerializer(serializers.ModelSerializer):
    picture_url = serializers.CharField(read_only=True)
    plain_url = serializers.CharField(read_only=True)

    class Meta:
        model = Exemplar
        fields = ["id", "unit", "kind", "rank", "image_index", "image_name", "score", "picture_url", "plain_url"]


class LayerRowSerializer(serializers.Serializer):
    """One module of a network in the layer picker."""

    name = serializers.CharField(help_text="the module path to dissect, e.g. layer4")
    kind = serializers.CharField(help_text="the module's class name")
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="output shape without the batch")
    units = serializers.IntegerField(allow_null=True, help_text="null: the output cannot be read as maps")
    map_size = serializers.ListField(child=serializers.IntegerField(), allow_null=True, help_text="[height, width]")
    reading = serializers.CharField(help_text="how it is read, or why it cannot be dissected")


class EstimatedSecondsSerializer(serializers.Serializer):
    cpu = serializers.FloatField(allow_null=True)
    cuda = serializers.FloatField(allow_null=True)


class LayerChoicePlanSerializer(serializers.Serializer):
    """The plan of the chosen layers on a dataset, with the estimated forward time."""

    lines = serializers.ListField(child=serializers.CharField())
    images = serializers.IntegerField()
    passes = serializers.IntegerField()
    disk_bytes = serializers.IntegerField()
    memory_bytes = serializers.IntegerField()
    flops_per_image = serializers.IntegerField(allow_null=True)
    estimated_seconds = EstimatedSecondsSerializer()


class LayerTableSerializer(serializers.Serializer):
    image_size = serializers.IntegerField()
    layers = LayerRowSerializer(many=True)
    plan = LayerChoicePlanSerializer(allow_null=True)


class ArchitectureLayerTableSerializer(serializers.Serializer):
    architecture = serializers.CharField()
    image_size = serializers.IntegerField()
    layers = LayerRowSerializer(many=True)
