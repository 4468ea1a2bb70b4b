"""Networks and probe datasets a requester registers before dissecting."""
from django.conf import settings
from django.db import models

from units.projects.models import Project

CATEGORY_CHOICES = [
    ("scene", "scene"),
    ("object", "object"),
    ("part", "part"),
    ("texture", "texture"),
    ("material", "material"),
    ("color", "color"),
]


class RegistryEntry(models.Model):
    """What every registered network and dataset has: its project, a name unique there, a description, who and when."""

    project = models.ForeignKey(Project, related_name="%(class)ss", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["name"]
        # Unique per project only: a name taken in another project must not tell that project exists.
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="%(class)s_unique_name")]

    def __str__(self) -> str:
        return self.name


class Network(RegistryEntry):
    class Kind(models.TextChoices):
        CLASSIFIER = "classifier", "classifier (images in, dissected on a probe dataset)"
        GENERATOR = "generator", "generator (z in, dissected on its own samples labelled by a segmenter)"

    class Architecture(models.TextChoices):
        """Display names of the architectures with one; `architecture` holds any name the engine builds
        (every torchvision classification model, ``timm:<name>``, ``program``), checked by the service."""

        MIXTURENET = "mixturenet", "MixtureNet (mixture of digits)"
        ALEXNET = "alexnet", "AlexNet"
        VGG16 = "vgg16", "VGG-16"
        RESNET18 = "resnet18", "ResNet-18"
        RESNET50 = "resnet50", "ResNet-50"
        DENSENET161 = "densenet161", "DenseNet-161"
        GOOGLENET = "googlenet", "GoogLeNet"
        DCGAN32 = "dcgan32", "DCGAN generator, 32 px (GAN Dissection)"
        DCGAN64 = "dcgan64", "DCGAN generator, 64 px (GAN Dissection)"
        CDCGAN32 = "cdcgan32", "Class-conditional DCGAN generator, 32 px, layer2 gated per digit (GAN Dissection)"
        SPRITES32 = "sprites32", "Layered conditional generator, 32 px, a sprite per digit from layer2 (GAN Dissection)"
        PROGRAM = "program", "Exported program (torch.export .pt2)"

    # Set by the registering service from the architecture; stored so lists and the API can filter on it.
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CLASSIFIER, db_index=True)
    # No choices here: the engine's catalogue (torchvision's, timm's) is the list, and it changes with
    # their versions, not with our migrations.
    architecture = models.CharField(max_length=100)
    checkpoint = models.FileField(upload_to="checkpoints/", max_length=500, blank=True)
    num_classes = models.PositiveIntegerField(null=True, blank=True)
    class_names = models.JSONField(default=list, blank=True)
    # Normalisation in 0..1 units, as the engine's --mean/--std take it.
    mean = models.JSONField(default=list, blank=True)
    std = models.JSONField(default=list, blank=True)
    # Images are resized to input_size x input_size for this network (a ViT's weights fix it);
    # empty: the dataset's own size.
    input_size = models.PositiveIntegerField(null=True, blank=True)

    @property
    def architecture_label(self) -> str:
        known = dict(self.Architecture.choices)
        return known.get(self.architecture, self.architecture)


class ProbeDataset(RegistryEntry):
    class Kind(models.TextChoices):
        BRODEN = "broden", "Broden format (densely labelled)"
        FOLDER = "folder", "Image folder (no labels)"
        MIXTURE = "mixture", "Mixture of digits (Broden format, ground truth known)"
        # GAN Dissection's probe: a generator's own samples, labelled per pixel by this segmenter.
        # `path` is the segmenter checkpoint; its classes are the concepts.
        SEGMENTER = "segmenter", "Segmenter (labels a generator's samples; GAN Dissection)"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Absolute path, or relative to settings.DATASETS_ROOT.
    path = models.CharField(max_length=500)
    image_size = models.PositiveIntegerField(null=True, blank=True, help_text="Resize for image folders.")
    num_images = models.PositiveIntegerField(default=0)
    categories = models.JSONField(default=list, blank=True)
    meta = models.JSONField(default=dict, blank=True)

    @property
    def engine_spec(self) -> str:
        from pathlib import Path

        root = Path(self.path)
        if not root.is_absolute():
            root = Path(settings.DATASETS_ROOT) / root
        if self.kind == self.Kind.SEGMENTER:
            raise ValueError("a segmenter is not an image dataset; generator jobs load it with load_segmenter")
        prefix = "folder" if self.kind == self.Kind.FOLDER else "broden"
        return f"{prefix}:{root}"


class Concept(models.Model):
    """One label of a probe dataset's vocabulary (Broden label.csv row)."""

    dataset = models.ForeignKey(ProbeDataset, related_name="concepts", on_delete=models.CASCADE)
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=40)

    class Meta:
        ordering = ["dataset", "number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="concept_unique_number")]

    def __str__(self) -> str:
        return f"{self.name} ({self.category})"
