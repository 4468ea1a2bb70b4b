"""Register a network: python manage.py register_network NAME --arch resnet18 --checkpoint PATH [...]"""
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from units.dissection.services import DissectionError, NetworkInput, network_register
from units.projects.models import Project
from units.projects.selectors import project_named


def _floats(text: str | None) -> list[float]:
    return [float(v) for v in text.split(",")] if text else []


class Command(BaseCommand):
    help = "Register a network (the checkpoint is checked by loading it as the engine will)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--project", required=True, help="the project's name or id")
        parser.add_argument("--arch", required=True,
                            help="any torchvision classification model (resnet50, convnext_tiny, vit_b_16, ...), "
                                 "timm:<name>, mixturenet, dcgan32/dcgan64/cdcgan32/sprites32, or program "
                                 "(--checkpoint is a .pt2 torch.export program)")
        parser.add_argument("--checkpoint", type=Path,
                            help="state_dict file, or the .pt2 program; omitted: seeded random weights")
        parser.add_argument("--input-size", type=int, help="resize images to N x N (default: the architecture's, "
                                                          "for a fixed-size network such as a ViT; else the dataset's)")
        parser.add_argument("--num-classes", type=int)
        parser.add_argument("--classes", type=Path, help="text file with one class name per line")
        parser.add_argument("--mean", help="R,G,B in 0..1 units (default: the architecture's weights'; "
                                           "NetDissect-Lite's for the NetDissect architectures)")
        parser.add_argument("--std", help="R,G,B in 0..1 units")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            project = project_named(opts["project"])
            names = opts["classes"].read_text().splitlines() if opts["classes"] else []
            network = network_register(
                project=project, name=opts["name"], architecture=opts["arch"], checkpoint=opts["checkpoint"],
                inputs=NetworkInput(num_classes=opts["num_classes"], class_names=names, mean=_floats(opts["mean"]),
                                    std=_floats(opts["std"]), input_size=opts["input_size"]),
                description=opts["description"],
            )
        except (DissectionError, Project.DoesNotExist, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Registered network {network.name} (id {network.pk})."))
