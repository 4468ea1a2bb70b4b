"""python manage.py aggregate (--job N | --layer NAME --job N | --batch N)"""
from django.core.management.base import BaseCommand, CommandError

from units.results.services import aggregation_run_batch, aggregation_run_job, aggregation_run_layer

from ._scope import add_scope_arguments, resolve_scope


class Command(BaseCommand):
    help = "Aggregate the crowd's answers now (majority vote, Dawid-Skene, agreement, alpha); safe to rerun."

    def add_arguments(self, parser):
        add_scope_arguments(parser)
        parser.add_argument("--no-adapt", action="store_true", help="do not add assignments to low-agreement HITs")

    def handle(self, *args, **options):
        job, layer, batch = resolve_scope(options)
        if layer is not None:
            runs = [aggregation_run_layer(layer=layer, adapt=not options["no_adapt"])]
        elif job is not None:
            runs = aggregation_run_job(job=job)
        elif batch is not None:
            runs = [aggregation_run_batch(batch=batch)]
        else:
            raise CommandError("Choose what to aggregate: --job N, --job N --layer NAME, or --batch N.")
        for run in runs:
            scope = run.layer.name if run.layer_id else f"batch {run.batch_id}"
            alpha = "-" if run.alpha is None else f"{run.alpha:.3f}"
            self.stdout.write(f"{scope}: {run.n_units} units, {run.n_annotations} annotations, alpha {alpha}")
