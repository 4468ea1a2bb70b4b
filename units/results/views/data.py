"""Pages that change or move data: synonyms, exports (create, progress, download), imports."""
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from units.dissection.models import ProbeDataset
from annotate_site.roles import requester_required

from ..forms import ExportForm, ImportForm, SynonymForm
from ..imports import mturk_import, tally_import
from ..models import ExportJob, SynonymEntry
from ..errors import ResultsError
from ..services import export_create, synonym_delete, synonym_set


@requester_required
def synonyms(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(ProbeDataset, pk=dataset_id)
    form = SynonymForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = synonym_set(dataset=dataset, user=request.user, **form.cleaned_data)
        except ResultsError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"'{entry.word}' now means '{entry.target}'. Re-aggregate to apply it.")
            return redirect("results:synonyms", dataset_id=dataset.pk)
    return render(request, "results/synonyms.html", {
        "dataset": dataset, "form": form, "entries": dataset.synonyms.all(),
        "concepts": dataset.concepts.order_by("category", "name"),
    })


@requester_required
@require_POST
def synonym_remove(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = get_object_or_404(SynonymEntry, pk=entry_id)
    dataset_id = entry.dataset_id
    synonym_delete(entry=entry)
    messages.success(request, "Synonym removed.")
    return redirect("results:synonyms", dataset_id=dataset_id)


@requester_required
def exports(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST or None, initial=request.GET or None)
    if request.method == "POST" and form.is_valid():
        try:
            export = export_create(user=request.user, **form.cleaned_data)
        except ResultsError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Export {export.pk} started; it appears below when ready.")
            return redirect("results:exports")
    return render(request, "results/exports.html", {
        "form": form, "exports": ExportJob.objects.select_related("layer", "job")[:50],
    })


@requester_required
def export_status(request: HttpRequest, export_id: int) -> JsonResponse:
    export = get_object_or_404(ExportJob, pk=export_id)
    return JsonResponse({"id": export.pk, "status": export.status, "progress": export.progress,
                         "filename": export.filename, "error": export.error_message})


@requester_required
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(ExportJob, pk=export_id)
    path = Path(settings.MEDIA_ROOT) / export.file if export.file else None
    if export.status != ExportJob.Status.SUCCEEDED or path is None or not path.is_file():
        raise Http404("This export is not ready (or its file was removed); start a new one.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=export.filename)


@requester_required
def imports(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload, layer = form.cleaned_data["file"], form.cleaned_data["layer"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(upload.name).name
            with open(path, "wb") as fh:
                for chunk in upload.chunks():
                    fh.write(chunk)
            try:
                if form.cleaned_data["kind"] == "tally":
                    n = tally_import(path=path, layer=layer)
                    done = f"{n} unit label(s) of {layer.name} set from {upload.name}."
                else:
                    counts = mturk_import(path=path, layer=layer, user=request.user)
                    refused = (f", {counts['invalid']} refused for an invalid word (lines "
                               f"{', '.join(map(str, counts['invalid_lines'][:10]))})" if counts.get("invalid") else "")
                    done = (f"{counts['created']} annotation(s) imported from {upload.name} "
                            f"({counts['skipped']} already known{refused}).")
            except ResultsError as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, done)
                return redirect("results:imports")
    return render(request, "results/imports.html", {"form": form})
