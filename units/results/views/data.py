"""Pages that change or move data: synonyms, exports (create, progress, download), imports."""
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from units.dissection.models import ProbeDataset
from annotate_site.roles import member_required
from units.projects.access import VIEW, WORK, object_for
from units.projects.current import current_project

from ..forms import ExportForm, ImportForm, SynonymForm
from ..imports import mturk_import, tally_import
from ..models import ExportJob, SynonymEntry
from ..errors import ResultsError
from ..services import export_create, synonym_delete, synonym_set


def _get(queryset, request: HttpRequest, pk: int, capability: str = VIEW):
    """A row of the user's projects; other ids answer 404 (see units.projects.access.object_for)."""
    try:
        return object_for(queryset, request.user, pk, capability)
    except queryset.model.DoesNotExist:
        raise Http404("No such item.") from None


@member_required
def synonyms(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _get(ProbeDataset.objects, request, dataset_id, WORK if request.method == "POST" else VIEW)
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


@member_required
@require_POST
def synonym_remove(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = _get(SynonymEntry.objects, request, entry_id, WORK)
    dataset_id = entry.dataset_id
    synonym_delete(entry=entry)
    messages.success(request, "Synonym removed.")
    return redirect("results:synonyms", dataset_id=dataset_id)


@member_required
def exports(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    if project is None:
        return redirect("projects:list")
    form = ExportForm(request.POST or None, initial=request.GET or None, user=request.user, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            export = export_create(user=request.user, **form.cleaned_data)
        except ResultsError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Export {export.pk} started; it appears below when ready.")
            return redirect("results:exports")
    return render(request, "results/exports.html", {
        "form": form, "exports": ExportJob.objects.filter(project=project).select_related("layer", "job")[:50],
        "project": project,
    })


@member_required
def export_status(request: HttpRequest, export_id: int) -> JsonResponse:
    export = _get(ExportJob.objects, request, export_id)
    return JsonResponse({"id": export.pk, "status": export.status, "progress": export.progress,
                         "filename": export.filename, "error": export.error_message})


@member_required
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _get(ExportJob.objects, request, export_id)
    path = Path(settings.MEDIA_ROOT) / export.file if export.file else None
    if export.status != ExportJob.Status.SUCCEEDED or path is None or not path.is_file():
        raise Http404("This export is not ready (or its file was removed); start a new one.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=export.filename)


@member_required
def imports(request: HttpRequest) -> HttpResponse:
    project = current_project(request, WORK)
    if project is None:
        messages.error(request, "Importing needs a project where you are owner or requester; create or join one first.")
        return redirect("projects:list")
    form = ImportForm(request.POST or None, request.FILES or None, user=request.user, project=project)
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
