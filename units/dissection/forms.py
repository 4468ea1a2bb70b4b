"""Forms of the requester pages: they parse input; the services decide and write."""
from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join

from .layer_picker import layer_name_problem
from .models import DissectionJob, Network, ProbeDataset


def _floats(text: str, field: str) -> list[float]:
    text = (text or "").strip()
    if not text:
        return []
    try:
        return [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise forms.ValidationError(f"{field}: write three numbers separated by commas, e.g. "
                                    f"0.485,0.456,0.406.") from None


def architecture_options() -> list[tuple[str, str]]:
    """Every architecture the page offers: ours with a display name, then torchvision's catalogue."""
    from tasks.engine.catalogue import torchvision_names

    named = dict(Network.Architecture.choices)
    return list(named.items()) + [(n, "torchvision") for n in torchvision_names() if n not in named]


class SuggestingInput(forms.TextInput):
    """A text input with a searchable list of suggestions (an HTML datalist); any text may be typed."""

    def __init__(self, options, attrs=None) -> None:
        super().__init__(attrs)
        self.options = options

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{name}-options"
        html = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        items = format_html_join("", '<option value="{}">{}</option>', self.options())
        return html + format_html('<datalist id="{}">{}</datalist>', list_id, items)


class NetworkForm(forms.Form):
    name = forms.CharField(max_length=100)
    architecture = forms.CharField(
        max_length=100,
        widget=SuggestingInput(architecture_options),
        help_text="Any torchvision classification model (resnet50, convnext_tiny, vit_b_16, ...), timm:<name> with "
        "timm installed, mixturenet, a DCGAN generator, or program: a torch.export .pt2 file as the checkpoint.",
    )
    checkpoint = forms.FileField(required=False, help_text="A state_dict (.pt/.pth) or, for program, the .pt2 file; "
                                                           "leave empty for random weights.")
    input_size = forms.IntegerField(required=False, min_value=8, max_value=4096,
                                    help_text="Resize images to N x N; empty: the architecture's size for a fixed-size "
                                              "network (ViT), else the dataset's.")
    num_classes = forms.IntegerField(required=False, min_value=1)
    class_names = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text="One per line (optional).")
    mean = forms.CharField(required=False, help_text="R,G,B in 0..1 units; empty: the architecture's weights' "
                                                     "(NetDissect-Lite's for the NetDissect architectures).")
    std = forms.CharField(required=False, help_text="R,G,B in 0..1 units.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_mean(self) -> list[float]:
        return _floats(self.cleaned_data.get("mean", ""), "mean")

    def clean_std(self) -> list[float]:
        return _floats(self.cleaned_data.get("std", ""), "std")

    def clean_class_names(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("class_names", "").splitlines() if line.strip()]


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ProbeDataset.Kind.choices)
    path = forms.CharField(required=False, max_length=500,
                           help_text="A folder on the server (absolute, or relative to DATASETS_ROOT) ...")
    archive = forms.FileField(required=False, label="or a zip",
                              help_text="... or a zip of the dataset folder (a segmenter: its checkpoint file).")
    image_size = forms.IntegerField(required=False, min_value=8, max_value=2048,
                                    help_text="Resize images to this size (image folders; Broden keeps its sizes).")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("path")) == bool(data.get("archive")):
            raise forms.ValidationError("Give either a folder path or a zip (one of the two).")
        return data


class JobForm(forms.Form):
    network = forms.ModelChoiceField(queryset=Network.objects.all())
    dataset = forms.ModelChoiceField(queryset=ProbeDataset.objects.all())
    layers = forms.CharField(max_length=1000,
                             help_text="Module paths separated by commas, e.g. conv1, conv2, conv3 or layer4.")
    top_k = forms.IntegerField(initial=15, min_value=1, max_value=100,
                               help_text="Top images kept per unit (15 as in the CVPR human study).")
    quantile = forms.FloatField(initial=0.005, min_value=0.0001, max_value=0.49,
                                help_text="Top fraction of activations that is 'on' (NetDissect: 0.005).")
    iou_rule = forms.ChoiceField(choices=DissectionJob.IouRule.choices, initial="lite")
    batch_size = forms.IntegerField(initial=32, min_value=1, max_value=4096)
    token_grid = forms.CharField(required=False, max_length=16, label="Token grid",
                                 help_text="HEIGHTxWIDTH, e.g. 14x20: only for token layers whose tokens (less "
                                           "class/register tokens) are no square grid.")
    shards = forms.IntegerField(initial=1, min_value=1, max_value=64,
                                help_text="Split the images over this many GPU workers.")
    samples = forms.IntegerField(required=False, min_value=1,
                                 help_text="Generators only: samples dissected (default 1000).")
    sample_seed = forms.IntegerField(required=False, min_value=0, initial=0, help_text="Generators only: the z stream.")
    start = forms.BooleanField(required=False, initial=True, label="Start now")

    def __init__(self, *args, networks, datasets, **kwargs):
        # The choices are one project's: a job's network and dataset come from its project.
        super().__init__(*args, **kwargs)
        self.fields["network"].queryset = networks
        self.fields["dataset"].queryset = datasets

    def clean(self):
        # The service refuses the same layers; checking here too puts the engine's message (close names,
        # the fix for a layer that is not a map) on the layers field.
        data = super().clean()
        network, layers = data.get("network"), data.get("layers")
        if network is not None and layers:
            names = [part for part in layers.replace(",", " ").split() if part]
            problem = layer_name_problem(network.architecture, names, input_size=network.input_size,
                                         checkpoint=network.checkpoint.path if network.checkpoint else None,
                                         token_grid=data.get("token_grid") or "")
            if problem:
                self.add_error("layers", problem)
        return data


PAINT_GRID = 8  # the page's painting grid: 8x8 cells (4 px each on a 32 px image)


class PaintForm(forms.Form):
    """The paint page without JavaScript; the same fields as the JSON endpoint."""

    layer = forms.ChoiceField(choices=())
    seed = forms.IntegerField(min_value=0, max_value=10**9, initial=0, help_text="Sample number (z of sample i).")
    mode = forms.ChoiceField(choices=[("remove", "remove"), ("insert", "insert")], initial="remove",
                             widget=forms.RadioSelect)
    units = forms.CharField(required=False, help_text="Unit numbers, e.g. 4, 17.")
    label = forms.CharField(required=False, max_length=100, help_text="… and/or the units labelled, e.g. 7.")
    label_source = forms.ChoiceField(choices=[("any", "IoU or crowd"), ("iou", "IoU"), ("crowd", "crowd")],
                                     initial="any", widget=forms.Select(attrs={"aria-label": "whose label"}))
    box = forms.CharField(required=False, help_text="Region as top, left, bottom, right in pixels; "
                                                    "empty: the painted cells, or the whole image.")
    cell = forms.MultipleChoiceField(required=False, choices=[(f"{r},{c}", f"row {r + 1}, column {c + 1}")
                                                              for r in range(PAINT_GRID) for c in range(PAINT_GRID)],
                                     widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, layers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["layer"].choices = [(name, name) for name in layers]

    def clean_units(self) -> list[int]:
        text = self.cleaned_data.get("units", "").replace(",", " ").split()
        try:
            return [int(v) for v in text]
        except ValueError:
            raise forms.ValidationError("Write unit numbers separated by commas, e.g. 4, 17.") from None

    def clean_box(self) -> list[int] | None:
        text = self.cleaned_data.get("box", "").replace(",", " ").split()
        if not text:
            return None
        try:
            return [int(v) for v in text]
        except ValueError:
            raise forms.ValidationError("Write four whole numbers: top, left, bottom, right.") from None

    def grid(self) -> list[list[int]] | None:
        cells = {tuple(int(v) for v in cell.split(",")) for cell in self.cleaned_data.get("cell") or []}
        if not cells:
            return None
        return [[int((r, c) in cells) for c in range(PAINT_GRID)] for r in range(PAINT_GRID)]
