"""Register a probe dataset: python manage.py register_dataset NAME --kind broden (--path DIR | --zip FILE)"""
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from units.dissection.models import ProbeDataset
from units.dissection.services import DatasetSource, DissectionError, dataset_register
from units.projects.models import Project
from units.projects.selectors import project_named


class Command(BaseCommand):
    help = "Register a probe dataset from a folder or a zip; reads its concept vocabulary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--project", required=True, help="the project's name or id")
        parser.add_argument("--kind", required=True, choices=ProbeDataset.Kind.values)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--path", help="dataset folder (absolute, or relative to DATASETS_ROOT)")
        source.add_argument("--zip", type=Path, help="zip of the dataset folder (checked, then extracted)")
        parser.add_argument("--image-size", type=int, help="resize images (image folders)")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            project = project_named(opts["project"])
            if opts["zip"]:
                with opts["zip"].open("rb") as archive:
                    dataset = dataset_register(
                        project=project,
                        name=opts["name"],
                        kind=opts["kind"],
                        source=DatasetSource(archive=archive, archive_size=opts["zip"].stat().st_size),
                        image_size=opts["image_size"],
                        description=opts["description"],
                    )
            else:
                # The operator's shell may name any folder; the page and the API keep to DATASETS_ROOT.
                dataset = dataset_register(project=project, name=opts["name"], kind=opts["kind"],
                                           source=DatasetSource(path=opts["path"]), image_size=opts["image_size"],
                                           description=opts["description"], any_path=True)
        except (DissectionError, Project.DoesNotExist, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Registered dataset {dataset.name} (id {dataset.pk}): {dataset.num_images} images, "
            f"{dataset.concepts.count()} concepts in {', '.join(dataset.categories) or 'no category'}."
        ))
