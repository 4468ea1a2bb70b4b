"""Aggregated crowd labels, annotator skill, synonym tables and export jobs."""
from django.conf import settings
from django.db import models

from units.crowd.models import HitBatch
from units.dissection.models import Layer, ProbeDataset, Unit
from units.projects.models import Project


class SynonymEntry(models.Model):
    """A requester's rule "this word means that concept", per probe dataset (the project's vocabulary)."""

    project = models.ForeignKey(Project, related_name="synonyms", on_delete=models.CASCADE)  # the dataset's
    dataset = models.ForeignKey(ProbeDataset, related_name="synonyms", on_delete=models.CASCADE)
    word = models.CharField(max_length=100, help_text="What annotators write (normalised when saved).")
    target = models.CharField(max_length=100, help_text="The concept or word it stands for.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "word"]
        constraints = [models.UniqueConstraint(fields=["dataset", "word"], name="synonym_unique_word")]
        verbose_name_plural = "synonym entries"

    def __str__(self) -> str:
        return f"{self.word} -> {self.target}"


class AggregationRun(models.Model):
    """One aggregation of a layer's (or a batch's) annotations: method, parameters and when."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    project = models.ForeignKey(Project, related_name="aggregation_runs", on_delete=models.CASCADE)  # its scope's
    layer = models.ForeignKey(Layer, null=True, blank=True, related_name="aggregation_runs", on_delete=models.CASCADE)
    batch = models.ForeignKey(HitBatch, null=True, blank=True, related_name="aggregation_runs",
                              on_delete=models.CASCADE)
    method = models.CharField(max_length=100)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    n_units = models.PositiveIntegerField(default=0)
    n_annotations = models.PositiveIntegerField(default=0)
    alpha = models.FloatField(null=True, blank=True)  # Krippendorff's alpha (nominal) over the scope
    summary = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        scope = f"layer {self.layer_id}" if self.layer_id else f"batch {self.batch_id}"
        return f"aggregation {self.pk} of {scope} ({self.method})"


class AggregationSchedule(models.Model):
    """The debounce of one layer's aggregation (see schedule.aggregation_schedule).

    Claimed with conditional UPDATEs, so across web processes and workers a layer has at most one
    run waiting (`due_at`) and at most one running (`running_since`), however fast answers arrive.
    """

    layer = models.OneToOneField(Layer, related_name="aggregation_schedule", on_delete=models.CASCADE)
    due_at = models.DateTimeField(null=True, blank=True)  # a run is queued for then; None: none queued
    running_since = models.DateTimeField(null=True, blank=True)  # None: no run in progress

    def __str__(self) -> str:
        return f"aggregation schedule of layer {self.layer_id}"


class UnitAggregate(models.Model):
    """The crowd's label of one unit, and how it compares with the IoU label.

    The published label is `crowd_word` and `category` (aggregation.METHOD), each with its calibrated
    probability; `category_mv` is the plain vote beside it. `category_ds` and `category_ds_probability`
    are deprecated (they repeat `category` and `category_probability`; removed in the next release).
    """

    unit = models.OneToOneField(Unit, related_name="aggregate", on_delete=models.CASCADE)
    run = models.ForeignKey(AggregationRun, null=True, blank=True, related_name="aggregates", on_delete=models.SET_NULL)
    crowd_word = models.CharField(max_length=100, blank=True)  # the published word ("" = no clear concept)
    word_probability = models.FloatField(null=True, blank=True)  # calibrated P(the word is right)
    concept = models.CharField(max_length=200, blank=True)  # vocabulary concept the word names, if any
    category = models.CharField(max_length=10, blank=True)  # the published category
    category_probability = models.FloatField(null=True, blank=True)  # calibrated P(the category is right)
    method = models.CharField(max_length=20, blank=True)  # aggregation.METHOD_KEY of the run that wrote it
    category_mv = models.CharField(max_length=10, blank=True)
    category_ds = models.CharField(max_length=10, blank=True)  # deprecated: equals category
    category_ds_probability = models.FloatField(null=True, blank=True)  # deprecated: equals category_probability
    agreement = models.FloatField(default=0.0)  # share of the winning answer (word, or "none")
    category_agreement = models.FloatField(default=0.0)
    precision = models.FloatField(null=True, blank=True)
    interpretable = models.BooleanField(default=False)
    n_annotations = models.PositiveIntegerField(default=0)
    word_match = models.BooleanField(default=False)  # crowd word names the IoU label
    category_match = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["unit"]

    # Agreement of one answer with itself is 1.00 and says nothing; pages show it (and "interpretable")
    # from this many answers on, and flag the unit as "1 answer so far" below.
    MIN_ANSWERS_FOR_AGREEMENT = 2

    def __str__(self) -> str:
        return f"{self.unit}: {self.crowd_word or '-'} ({self.category})"

    @property
    def probability(self) -> float | None:
        """The published label's weaker side: what adaptive redundancy and pages judge the label by."""
        known = [p for p in (self.category_probability, self.word_probability) if p is not None]
        return min(known) if known else None

    @property
    def agreement_known(self) -> bool:
        return self.n_annotations >= self.MIN_ANSWERS_FOR_AGREEMENT


class UnitVerification(models.Model):
    """The crowd's judgement of one proposed label of a unit (verify HITs): is it descriptive?

    `accepted_mv` / `accepted_ds` are None while no yes/no answer exists (only "unsure" answers, or none).
    """

    project = models.ForeignKey(Project, related_name="verifications", on_delete=models.CASCADE)  # the unit's
    unit = models.ForeignKey(Unit, related_name="verifications", on_delete=models.CASCADE)
    source = models.CharField(max_length=10)  # crowd.models.LabelSource: iou, crowd, requester, sentinel
    label = models.CharField(max_length=200)
    run = models.ForeignKey(AggregationRun, null=True, blank=True, related_name="verifications",
                            on_delete=models.SET_NULL)
    n_yes = models.PositiveIntegerField(default=0)
    n_no = models.PositiveIntegerField(default=0)
    n_unsure = models.PositiveIntegerField(default=0)
    accepted_mv = models.BooleanField(null=True, blank=True)
    accepted_ds = models.BooleanField(null=True, blank=True)
    ds_probability = models.FloatField(null=True, blank=True)  # Dawid-Skene posterior of its verdict
    agreement = models.FloatField(null=True, blank=True)  # share of the winning yes/no answer
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["unit", "source"]
        constraints = [models.UniqueConstraint(fields=["unit", "source"], name="verification_unique_source")]

    def __str__(self) -> str:
        return f"{self.unit} {self.source} {self.label!r}: {self.n_yes} yes / {self.n_no} no"


class AnnotatorSkill(models.Model):
    worker = models.OneToOneField(settings.AUTH_USER_MODEL, related_name="skill", on_delete=models.CASCADE)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True, blank=True)
    # P(an answer of theirs is right) in the published model of their latest layer (aggregation.reliability_fit)
    skill = models.FloatField(null=True, blank=True)
    ds_skill = models.FloatField(null=True, blank=True)  # deprecated: equals skill; removed in the next release
    run = models.ForeignKey(AggregationRun, null=True, blank=True, related_name="skills", on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["worker"]

    def __str__(self) -> str:
        return f"skill of user {self.worker_id}"


class ExportJob(models.Model):
    """A requested export; a row so pages and the API can show progress and offer the file."""

    class Kind(models.TextChoices):
        UNITS_CSV = "units_csv", "labelled units (CSV)"
        UNITS_JSON = "units_json", "labelled units (JSON)"
        TALLY = "tally", "NetDissect tally.csv with crowd columns"
        MTURK = "mturk", "Mechanical Turk results CSV"
        MILAN = "milan", "MILAN-style archive"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    project = models.ForeignKey(Project, related_name="exports", on_delete=models.CASCADE)  # its scope's
    kind = models.CharField(max_length=12, choices=Kind.choices)
    job = models.ForeignKey("units.DissectionJob", null=True, blank=True, related_name="exports",
                            on_delete=models.CASCADE)
    layer = models.ForeignKey(Layer, null=True, blank=True, related_name="exports", on_delete=models.CASCADE)
    batch = models.ForeignKey(HitBatch, null=True, blank=True, related_name="exports", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    progress = models.FloatField(default=0.0)  # 0..1
    file = models.CharField(max_length=500, blank=True)  # relative to MEDIA_ROOT
    error_message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.kind}, {self.status})"

    @property
    def filename(self) -> str:
        return self.file.rsplit("/", 1)[-1] if self.file else ""
