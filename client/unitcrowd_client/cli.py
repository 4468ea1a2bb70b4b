"""The `unitcrowd` command: the same client from a shell.

The server and credentials come from --url/--token (or --username/--password), else from the
environment: UNITCROWD_URL, UNITCROWD_TOKEN, UNITCROWD_USERNAME, UNITCROWD_PASSWORD.

  unitcrowd jobs list [--status succeeded]
  unitcrowd jobs show JOB
  unitcrowd labels JOB LAYER [--csv]
  unitcrowd export JOB KIND [--layer LAYER] --to FILE
  unitcrowd networks register NAME --project P --arch A [--checkpoint FILE]     (a progress bar while uploading)
  unitcrowd datasets register NAME --project P [--kind broden] (--zip FILE | --path FOLDER)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .client import UnitCrowd
from .errors import UnitCrowdError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unitcrowd", description="UnitCrowd from the command line.")
    parser.add_argument("--url", default=os.environ.get("UNITCROWD_URL"), help="the server, e.g. https://crowd.example.org")
    parser.add_argument("--token", default=os.environ.get("UNITCROWD_TOKEN"))
    parser.add_argument("--username", default=os.environ.get("UNITCROWD_USERNAME"))
    parser.add_argument("--password", default=os.environ.get("UNITCROWD_PASSWORD"))
    commands = parser.add_subparsers(dest="command", required=True)

    jobs = commands.add_parser("jobs", help="dissection jobs").add_subparsers(dest="action", required=True)
    listing = jobs.add_parser("list", help="jobs, newest first")
    listing.add_argument("--status", help="only jobs in this status (pending, running, succeeded, failed)")
    show = jobs.add_parser("show", help="one job as JSON")
    show.add_argument("job", type=int)

    labels = commands.add_parser("labels", help="a layer's crowd labels next to the IoU labels")
    labels.add_argument("job", type=int)
    labels.add_argument("layer", help="the layer's name, e.g. conv2")
    labels.add_argument("--csv", action="store_true", help="CSV (one row per unit) instead of a table")

    export = commands.add_parser("export", help="create an export, wait for it and save it")
    export.add_argument("job", type=int)
    export.add_argument("kind", choices=["units_csv", "units_json", "tally", "mturk", "milan"])
    export.add_argument("--layer")
    export.add_argument("--to", required=True, help="the file to write")
    networks = commands.add_parser("networks", help="networks").add_subparsers(dest="action", required=True)
    net = networks.add_parser("register", help="register a network, uploading its checkpoint")
    net.add_argument("name")
    net.add_argument("--project", required=True, help="the project's name or id")
    net.add_argument("--arch", required=True, help="e.g. resnet50, vit_b_16, timm:<name>, program")
    net.add_argument("--checkpoint", help="a state_dict (.pth) or torch.export program (.pt2)")
    net.add_argument("--quiet", action="store_true", help="no progress bar")

    datasets = commands.add_parser("datasets", help="probe datasets").add_subparsers(dest="action", required=True)
    ds = datasets.add_parser("register", help="register a probe dataset, uploading its zip")
    ds.add_argument("name")
    ds.add_argument("--project", required=True, help="the project's name or id")
    ds.add_argument("--kind", default="broden")
    where = ds.add_mutually_exclusive_group(required=True)
    where.add_argument("--zip", help="a zip of the dataset's folder to upload")
    where.add_argument("--path", help="a folder on the server")
    ds.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _connect(args: argparse.Namespace) -> UnitCrowd:
    if not args.url:
        raise SystemExit("unitcrowd: give --url or set UNITCROWD_URL (the server's address).")
    if not args.token and not (args.username and args.password):
        raise SystemExit("unitcrowd: give --token (or UNITCROWD_TOKEN), or --username and --password.")
    return UnitCrowd(args.url, token=args.token or None, username=args.username, password=args.password)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        uc = _connect(args)
        if args.command == "jobs" and args.action == "list":
            print(f"{'id':>5}  {'status':<10} {'progress':>8}  layers")
            for job in uc.jobs.list(**({"status": args.status} if args.status else {})):
                print(f"{job.id:>5}  {job.status:<10} {job.progress:>8.0%}  {', '.join(job.layers)}")
        elif args.command == "jobs":
            print(json.dumps(uc.jobs.get(args.job).raw, indent=2))
        elif args.command == "labels":
            table = uc.labels(args.job, args.layer)
            if args.csv:
                table.to_csv(sys.stdout)
            else:
                print(f"{'unit':>5}  {'crowd':<16} {'iou':<16} {'agreement':>9}  match")
                for row in table:
                    agreement = "" if row.agreement is None else f"{row.agreement:.2f}"
                    print(f"{row.unit:>5}  {row.crowd_word:<16} {row.iou_label:<16} {agreement:>9}  "
                          f"{'yes' if row.word_match else 'no'}")
        elif args.command == "networks":
            network = uc.networks.register(args.name, project=args.project, arch=args.arch,
                                           checkpoint=args.checkpoint, progress=not args.quiet)
            print(f"registered network {network.id} ({network.name})")
        elif args.command == "datasets":
            dataset = uc.datasets.register(args.name, project=args.project, kind=args.kind, zip=args.zip,
                                           path=args.path, progress=not args.quiet)
            print(f"registered dataset {dataset.id} ({dataset.name})")
        elif args.command == "export":
            path = uc.exports.download(args.job, args.kind, layer=args.layer, to=args.to)
            print(f"wrote {path}")
    except UnitCrowdError as exc:
        print(f"unitcrowd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
