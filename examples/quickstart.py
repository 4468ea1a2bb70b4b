"""UnitCrowd from Python: register a network and a dataset, dissect a layer, publish its HITs, read its labels.

    pip install './client[pandas]'
    python examples/quickstart.py --url http://127.0.0.1:8000 --username admin --password unitcrowd-admin \\
        --project demo --dataset-path /srv/datasets/mixture --layer conv3

The dataset folder must lie under the server's DATASETS_ROOT or DATASET_PATHS_ALLOWED (or give --dataset-zip
to upload a zip of it). The network is a MixtureNet with seeded random weights; pass --checkpoint to upload yours.
"""
from __future__ import annotations

import argparse
import os
import uuid

from unitcrowd_client import UnitCrowd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("UNITCROWD_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--username", default=os.environ.get("UNITCROWD_USERNAME", "admin"))
    parser.add_argument("--password", default=os.environ.get("UNITCROWD_PASSWORD"))
    parser.add_argument("--project", default=os.environ.get("UNITCROWD_PROJECT", "demo"),
                        help="the project (name or id) to work in; you must be its owner or a requester")
    parser.add_argument("--dataset-path", help="a mixture dataset folder on the server")
    parser.add_argument("--dataset-zip", help="a zip of a mixture dataset folder to upload")
    parser.add_argument("--checkpoint", help="a MixtureNet state_dict (.pth) to upload")
    parser.add_argument("--layer", default="conv3")
    args = parser.parse_args()

    uc = UnitCrowd(args.url, username=args.username, password=args.password)
    tag = uuid.uuid4().hex[:6]  # names are unique on the server
    net = uc.networks.register(f"quickstart-{tag}", project=args.project, arch="mixturenet", num_classes=45,
                               checkpoint=args.checkpoint)
    ds = uc.datasets.register(f"quickstart-{tag}", project=args.project, kind="mixture", path=args.dataset_path,
                              zip=args.dataset_zip)
    job = uc.jobs.create(net, ds, layers=[args.layer], top_k=3, batch_size=8).wait(progress=True)
    print(f"job {job.id}: {job.status}")

    batch = uc.hits.publish(job, layers=[args.layer], assignments=3)
    print(f"published {batch.hits if batch else 0} HITs")

    units = uc.units.list(job, args.layer)
    print(f"{len(units)} units; unit {units[0].unit}'s IoU label: {units[0].iou_label!r}")

    df = uc.labels(job, args.layer).to_pandas()  # fills in as the crowd answers and the layer is aggregated
    print(f"labels DataFrame: {len(df)} rows, columns {list(df.columns)}")


if __name__ == "__main__":
    main()
