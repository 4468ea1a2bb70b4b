"""Shared argument handling: pick a job, a layer (job + name, or id) or a HIT batch from the command line."""
from django.core.management.base import BaseCommand, CommandError

from units.crowd.models import HitBatch
from units.dissection.models import DissectionJob, Layer
from units.results.errors import ResultsError


def add_scope_arguments(parser) -> None:
    parser.add_argument("--job", type=int, help="dissection job id")
    parser.add_argument("--layer", help="layer name (with --job) or layer id")
    parser.add_argument("--batch", type=int, help="HIT batch id")


def resolve_layer(job_id: int | None, layer: str | None) -> Layer | None:
    if layer is None:
        return None
    qs = Layer.objects.select_related("job__dataset", "job__network")
    if layer.isdigit() and job_id is None:
        found = qs.filter(pk=int(layer)).first()
        if found is None:
            raise CommandError(f"No layer with id {layer}; list them with --job <id> --layer <name>.")
        return found
    if job_id is None:
        raise CommandError("Give --job <id> with a layer name (or pass the layer's numeric id).")
    found = qs.filter(job_id=job_id, name=layer).first()
    if found is None:
        names = ", ".join(qs.filter(job_id=job_id).values_list("name", flat=True)) or "none"
        raise CommandError(f"Job {job_id} has no layer {layer!r}; its layers: {names}.")
    return found


def resolve_scope(options) -> tuple[DissectionJob | None, Layer | None, HitBatch | None]:
    layer = resolve_layer(options.get("job"), options.get("layer"))
    job = None
    if layer is None and options.get("job") is not None:
        job = DissectionJob.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"No dissection job {options['job']}.")
    batch = None
    if options.get("batch") is not None:
        batch = HitBatch.objects.filter(pk=options["batch"]).first()
        if batch is None:
            raise CommandError(f"No HIT batch {options['batch']}.")
    return job, layer, batch


class LayerFileImportCommand(BaseCommand):
    """`manage.py import_<kind> FILE --job N --layer NAME`: read FILE into one layer; a refused
    file is a one-line command error (nothing is written)."""

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--job", type=int)
        parser.add_argument("--layer", required=True, help="layer name (with --job) or layer id")

    def import_file(self, path: str, layer) -> str:
        """Import and return the line to print."""
        raise NotImplementedError

    def handle(self, *args, **options):
        layer = resolve_layer(options["job"], options["layer"])
        try:
            self.stdout.write(self.import_file(options["file"], layer))
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
