"""Dissection jobs and what they produce: layers, units, exemplars and IoU scores."""
import secrets

from django.conf import settings
from django.db import models

from units.projects.models import Project

from .registry import Concept, Network, ProbeDataset

# NetDissect: a unit is a detector of its best concept when that IoU exceeds this (the engine's iou.INTERPRETABLE_IOU).
INTERPRETABLE_IOU = 0.04


class DissectionJob(models.Model):
    """A job is a row: pages and the API read status and progress here, never from the broker."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    class Kind(models.TextChoices):
        CLASSIFIER = "classifier", "classifier on a probe dataset"
        GENERATOR = "generator", "generator on its own samples (GAN Dissection)"

    class IouRule(models.TextChoices):
        LITE = "lite", "NetDissect-Lite"
        ORIGINAL = "original", "original NetDissect"

    # The network's project (its dataset's too): denormalised so every scoped read filters one column.
    project = models.ForeignKey(Project, related_name="jobs", on_delete=models.CASCADE)
    network = models.ForeignKey(Network, related_name="jobs", on_delete=models.PROTECT)
    dataset = models.ForeignKey(ProbeDataset, related_name="jobs", on_delete=models.PROTECT)
    # The network's kind when the job was created; a generator job's "dataset" is a segmenter.
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CLASSIFIER)
    # Generator jobs: samples i = 0..samples-1 of z stream `sample_seed` (tasks.engine.gan.samples).
    samples = models.PositiveIntegerField(null=True, blank=True)
    sample_seed = models.PositiveIntegerField(default=0)
    layers = models.JSONField(default=list)
    top_k = models.PositiveIntegerField(default=15)
    quantile = models.FloatField(default=0.005)
    iou_rule = models.CharField(max_length=10, choices=IouRule.choices, default=IouRule.LITE)
    batch_size = models.PositiveIntegerField(default=32)
    # "HxW": the grid of token layers whose tokens are no square grid (engine --grid); empty: square grids only.
    token_grid = models.CharField(max_length=16, blank=True, default="")
    shards = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    stage = models.CharField(max_length=60, blank=True)
    progress = models.FloatField(default=0.0)  # 0..1
    timings = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)  # relative to MEDIA_ROOT
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.pk}: {self.network} on {self.dataset}"


class Layer(models.Model):
    job = models.ForeignKey(DissectionJob, related_name="layer_set", on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    num_units = models.PositiveIntegerField()
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="layer_unique_name")]

    def __str__(self) -> str:
        return f"{self.job.network.name}/{self.name}"


class Unit(models.Model):
    layer = models.ForeignKey(Layer, related_name="units", on_delete=models.CASCADE)
    index = models.PositiveIntegerField()  # 0-based channel index (tally.csv shows index + 1)
    threshold = models.FloatField()
    max_activation = models.FloatField(default=0.0)  # best image's spatial max; <= 0 means a dead unit
    iou_label = models.CharField(max_length=200, blank=True)
    iou_category = models.CharField(max_length=40, blank=True)
    iou_score = models.FloatField(default=0.0)
    strip = models.CharField(max_length=500, blank=True)  # path relative to MEDIA_ROOT
    # Gold units: the true concept is known (mixture ground truth, or marked by a requester).
    is_gold = models.BooleanField(default=False)
    gold_word = models.CharField(max_length=100, blank=True)
    gold_category = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["layer", "index"]
        constraints = [models.UniqueConstraint(fields=["layer", "index"], name="unit_unique_index")]
        # The claim finds gold HITs through their (few) gold units: crowd.services._open_ids.
        indexes = [models.Index(fields=["id"], condition=models.Q(is_gold=True), name="unit_gold")]

    def __str__(self) -> str:
        # People see NetDissect's numbering (from 1); `index` stays the 0-based channel.
        return f"{self.layer} unit {self.index + 1}"

    @property
    def is_interpretable_by_iou(self) -> bool:
        return self.iou_score > INTERPRETABLE_IOU

    @property
    def is_dead(self) -> bool:
        return self.max_activation <= 0

    @property
    def strip_url(self) -> str:
        return settings.MEDIA_URL + self.strip if self.strip else ""


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


class Exemplar(models.Model):
    """One picture shown for a unit: a top-activated image (or a low-activation sentinel)."""

    class Kind(models.TextChoices):
        TOP = "top", "top activated"
        SENTINEL = "sentinel", "low-activation sentinel"

    unit = models.ForeignKey(Unit, related_name="exemplars", on_delete=models.CASCADE)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TOP)
    rank = models.PositiveIntegerField()
    image_index = models.PositiveIntegerField()
    image_name = models.CharField(max_length=500)
    score = models.FloatField()
    picture = models.CharField(max_length=500)  # highlighted, relative to MEDIA_ROOT
    plain = models.CharField(max_length=500, blank=True)  # un-highlighted image
    # What annotators see instead of the pk and the file path: random, so neither the order of
    # creation (tops first, then sentinels) nor the path (`sentinels/`) tells a sentinel apart.
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)

    class Meta:
        ordering = ["unit", "kind", "rank"]
        constraints = [models.UniqueConstraint(fields=["unit", "kind", "rank"], name="exemplar_unique_rank")]

    def __str__(self) -> str:
        return f"{self.kind} exemplar {self.rank} of unit {self.unit_id}"

    @property
    def picture_url(self) -> str:
        return settings.MEDIA_URL + self.picture

    @property
    def plain_url(self) -> str:
        return settings.MEDIA_URL + (self.plain or self.picture)


class UnitConceptScore(models.Model):
    """IoU of a unit with one concept; only each unit's best few concepts are stored."""

    unit = models.ForeignKey(Unit, related_name="concept_scores", on_delete=models.CASCADE)
    concept = models.ForeignKey(Concept, related_name="unit_scores", on_delete=models.CASCADE)
    rank = models.PositiveIntegerField()
    iou = models.FloatField()

    class Meta:
        ordering = ["unit", "rank"]
        constraints = [models.UniqueConstraint(fields=["unit", "concept"], name="score_unique_concept")]

    def __str__(self) -> str:
        return f"unit {self.unit_id} ~ concept {self.concept_id}"

