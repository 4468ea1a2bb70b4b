"""Forms of the results pages."""
from django import forms

from units.dissection.models import DissectionJob, Layer
from units.projects.access import WORK, scope

from .models import ExportJob


class SynonymForm(forms.Form):
    word = forms.CharField(max_length=100, help_text="What annotators write, e.g. puppies")
    target = forms.CharField(max_length=100, help_text="The concept it stands for, e.g. dog")


class ExportForm(forms.Form):
    kind = forms.ChoiceField(choices=ExportJob.Kind.choices)
    # Choice labels name the network and dataset: fetch them with the jobs, not once per option.
    job = forms.ModelChoiceField(queryset=DissectionJob.objects.none(), required=False)
    layer = forms.ModelChoiceField(queryset=Layer.objects.none(), required=False)

    def __init__(self, *args, user, project, **kwargs):
        # One project's jobs and layers: another project's id is "not one of the choices".
        super().__init__(*args, **kwargs)
        self.fields["job"].queryset = scope(DissectionJob.objects, user).filter(project=project).select_related(
            "network", "dataset")
        self.fields["layer"].queryset = scope(Layer.objects, user, path="job__project").filter(
            job__project=project).select_related("job__network")


class ImportForm(forms.Form):
    KINDS = [("tally", "NetDissect tally.csv (automatic labels)"), ("mturk",
                                                                    "Mechanical Turk results CSV (annotations)")]
    kind = forms.ChoiceField(choices=KINDS)
    layer = forms.ModelChoiceField(queryset=Layer.objects.none())
    file = forms.FileField(help_text="A CSV file")

    def __init__(self, *args, user, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["layer"].queryset = scope(Layer.objects, user, WORK, path="job__project").filter(
            job__project=project).select_related("job__network")

    MAX_BYTES = 50 * 1024 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 50 MB; split it or use the import commands.")
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError("Upload a .csv file.")
        return upload
