"""The demo: mixture of digits -> MixtureNet -> dissection of conv1..conv3 -> HITs -> accounts.

Offline and on the CPU. Every step first looks for what an earlier run left (dataset folders,
checkpoint, registered rows, a finished job, HITs, users) and reuses it, so a rerun is quick.
"""
from __future__ import annotations

import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from units.crowd.errors import PublishError
from units.crowd.models import LabelSource
from units.crowd.publishing import PublishSettings, hit_publish
from units.crowd.qualification import mark_qualified
from units.crowd.verify import hit_publish_verify
from units.dissection.job_state import job_fail
from units.dissection.models import DissectionJob, Network, ProbeDataset, Unit
from units.dissection.services import (
    DatasetSource,
    DissectionError,
    JobSettings,
    dataset_register,
    job_create,
    job_start,
    network_register,
)
from units.projects.services import project_ensure

ADMIN = ("admin", "unitcrowd-admin")
ANNOTATOR_PASSWORD = "unitcrowd-annotator"
LAYERS = ["conv1", "conv2", "conv3"]
# (train images, epochs, probe images, top-k): full demo vs --quick (tests).
SIZES = {"full": (5000, 6, 600, 15), "quick": (120, 1, 40, 5)}


DEFAULT_PREFIX = "demo"  # names the demo's project, network, dataset and folders


class Command(BaseCommand):
    help = "Build the demo: mixture-of-digits data, a trained MixtureNet, a dissection, HITs and demo accounts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for tests")
        parser.add_argument("--train-images", type=int, help="training images (default 5000)")
        parser.add_argument("--epochs", type=int, help="training epochs (default 6)")
        parser.add_argument("--probe-images", type=int, help="images dissected (default 600)")
        parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                            help="name prefix of the demo's project, network, dataset and folders")
        parser.add_argument("--wait", type=int, default=3600, help="seconds to wait for a job run by workers")
        parser.add_argument("--admin-password", help="password of the demo's admin (default: the well-known one "
                                                     "with DEBUG on, a generated one, printed, with DEBUG off)")
        parser.add_argument("--with-gan", action="store_true",
                            help="also a small DCGAN and its segmenter, dissected (GAN Dissection; see --publish-gan)")
        parser.add_argument("--publish-gan", action="store_true",
                            help="with --with-gan: also publish the generator's units as HITs (by default they wait, "
                                 "so new annotators start on the classifier's units)")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def handle(self, *args, **opts) -> None:
        size = SIZES["quick" if opts["quick"] else "full"]
        n_train = opts["train_images"] or size[0]
        epochs = opts["epochs"] or size[1]
        n_probe = opts["probe_images"] or size[2]
        top_k = size[3]
        prefix = opts["prefix"]
        started = time.perf_counter()
        self.check_admin_password(opts.get("admin_password"))  # before minutes of work, not after
        # The demo's rows live in a project named after the prefix (site admins, like the demo's, see every project).
        self.project = project_ensure(name=prefix)
        try:
            network = self.network(prefix, n_train, epochs)
            dataset = self.dataset(prefix, n_probe)
            job = self.job(prefix, network, dataset, top_k, opts["wait"])
            self.publish(job)
            if opts["with_gan"]:
                from ..demo_gan import gan_demo_build

                gan_demo_build(self, prefix=prefix, quick=opts["quick"], wait=opts["wait"], publish=opts["publish_gan"])
        except (DissectionError, PublishError) as exc:
            raise CommandError(str(exc)) from None
        self.users(admin_password=opts.get("admin_password"), project=self.project)
        self.say(self.style.SUCCESS(f"Demo ready in {time.perf_counter() - started:.0f} s (job {job.pk})."))

    # -- steps ---------------------------------------------------------------------------------

    def _data_dir(self, prefix: str, part: str) -> Path:
        return Path(settings.DATASETS_ROOT) / f"{prefix}-mixture-{part}"

    def _make_mixture(self, out: Path, n: int, split: str, seed: int) -> Path:
        from tasks.engine.mixture import MixtureSpec, make_mixture

        if (out / "meta.json").is_file():
            import json

            if json.loads((out / "meta.json").read_text()).get("n_images") == n:
                return out
        self.say(f"Generating {n} mixture-of-digits images ({split}) in {out} ...")
        return make_mixture(out, n_images=n, split=split, seed=seed, overwrite=True, spec=MixtureSpec(source="digits"))

    def network(self, prefix: str, n_train: int, epochs: int) -> Network:
        name = f"{prefix}-mixturenet"
        existing = Network.objects.filter(project=self.project, name=name).first()
        if existing:
            self.say(f"Network {name!r} exists; reused.")
            return existing
        from tasks.engine.train import recipe_for, train_mixture

        train_dir = self._make_mixture(self._data_dir(prefix, "train"), n_train, "train", seed=0)
        checkpoint = Path(settings.VAR_DIR) / f"{prefix}-mixturenet.pt"
        if not checkpoint.is_file():
            self.say(f"Training MixtureNet for {epochs} epoch(s) on {n_train} images (CPU: a minute or two) ...")
            metrics = train_mixture(train_dir, checkpoint, recipe=recipe_for("mixturenet", epochs=epochs),
                                    progress=False)
            self.say(f"  train accuracy {metrics.get('train_acc', float('nan')):.3f}")
        return network_register(
            project=self.project, name=name, architecture="mixturenet", checkpoint=checkpoint,
            description=f"MixtureNet trained by the demo ({epochs} epoch(s), {n_train} images).",
        )

    def dataset(self, prefix: str, n_probe: int) -> ProbeDataset:
        name = f"{prefix}-mixture"
        existing = ProbeDataset.objects.filter(project=self.project, name=name).first()
        if existing:
            self.say(f"Dataset {name!r} exists; reused.")
            return existing
        probe_dir = self._make_mixture(self._data_dir(prefix, "probe"), n_probe, "val", seed=1)
        return dataset_register(
            project=self.project, name=name, kind=ProbeDataset.Kind.MIXTURE,
            source=DatasetSource(path=str(probe_dir)),
            description="Mixture of digits (held-out digits); every digit's pixels are known.",
        )

    def job(self, prefix: str, network: Network, dataset: ProbeDataset, top_k: int, wait: int,
            create=None) -> DissectionJob:
        """The network's finished job on the dataset, else `create()` (default: conv1..conv3) run to the end."""
        done = DissectionJob.objects.filter(network=network, dataset=dataset, status=DissectionJob.Status.SUCCEEDED)
        job = done.order_by("-finished_at").first()
        if job:
            self.say(f"Job {job.pk} (dissection of {', '.join(job.layers)}) finished earlier; reused.")
            return job
        job = (DissectionJob.objects.filter(network=network, dataset=dataset).order_by("-created_at").first()
               or (create() if create else job_create(network=network, dataset=dataset,
                                                      options=JobSettings(LAYERS, top_k=top_k, batch_size=64))))
        live = (DissectionJob.Status.QUEUED, DissectionJob.Status.RUNNING)
        if job.status in live and settings.CELERY_TASK_ALWAYS_EAGER:
            # No workers: a queued/running job here was left by an interrupted demo run.
            job_fail(job_id=job.pk, attempt=job.attempts, message="Interrupted; the demo starts it again.")
            job.refresh_from_db()
        if job.status not in live:
            self.say(f"Dissecting {', '.join(job.layers)} (job {job.pk}) ...")
            job = job_start(job=job, background=False)
        deadline = time.monotonic() + wait
        if settings.CELERY_TASK_ALWAYS_EAGER and job.status in live:
            raise CommandError(f"Job {job.pk} did not run in-process (status {job.status}); see the log above.")
        while job.status in live:
            if time.monotonic() > deadline:
                raise CommandError(f"Job {job.pk} is still {job.status} after {wait} s; are the gpu workers running?")
            time.sleep(2)  # a broker is configured: the job runs on the workers
            job.refresh_from_db()
        if job.status != DissectionJob.Status.SUCCEEDED:
            raise CommandError(f"Job {job.pk} failed: {job.error_message}")
        self.say(f"  done: {Unit.objects.filter(layer__job=job).count()} units.")
        return job

    def publish(self, job: DissectionJob, *, pictures: str = "Digit pictures") -> None:
        """Label HITs and verify HITs of the job's units. Batch titles are what annotators read on their
        home page and every HIT page, so they say what the work is, never a job id."""
        layers = list(job.layer_set.all())
        batch = hit_publish(layers=layers, settings=PublishSettings(
            assignments_per_hit=3, sentinels=0, name=f"{pictures}: name what each unit detects"))
        self.say(f"Publishing: {batch.report}.")
        # A yes/no question on the automatic (IoU) label: the quick work a new annotator can start with.
        verify = hit_publish_verify(layers=layers, sources=[LabelSource.IOU], settings=PublishSettings.for_verify(
            assignments_per_hit=3, name=f"{pictures}: does the proposed word fit?"))
        self.say(f"Publishing verify HITs: {verify.report}.")

    def check_admin_password(self, admin_password: str | None) -> None:
        if admin_password is None:
            return
        if admin_password == ADMIN[1] and not settings.DEBUG:
            raise CommandError("The well-known demo admin password is refused when DEBUG is off; "
                               "choose another --admin-password, or leave it out to get a generated one.")
        try:
            validate_password(admin_password, get_user_model()(username=ADMIN[0]))
        except ValidationError as exc:
            raise CommandError(f"--admin-password: {' '.join(exc.messages)}") from None

    def users(self, *, admin_password: str | None = None, project=None) -> None:
        """The demo accounts, the annotators qualified for the demo's project (`project`, the command's own
        by default). The well-known passwords in README are for a development machine only:
        with DEBUG off anyone who read the README could sign in as admin, so there the admin gets the
        password given or a generated one (printed once), and the annotators a generated one."""
        User = get_user_model()
        username, well_known = ADMIN
        self.check_admin_password(admin_password)
        admin = User.objects.filter(username=username).first()
        if admin is None:
            password = admin_password or (well_known if settings.DEBUG else secrets.token_urlsafe(12))
            User.objects.create_superuser(username=username, password=password, email="admin@example.org")
            self.say(f"Created admin "
                     f"{username!r}" + ("." if password == well_known else f" with password {password!r}."))
        elif admin_password or (not settings.DEBUG and admin.check_password(well_known)):
            password = admin_password or secrets.token_urlsafe(12)
            admin.set_password(password)
            admin.save(update_fields=["password"])
            self.say(f"Admin {username!r}: password set to {password!r}.")
        annotator_password = ANNOTATOR_PASSWORD if settings.DEBUG else secrets.token_urlsafe(12)
        for k in range(1, 4):
            name = f"annotator{k}"
            user = User.objects.filter(username=name).first()
            if user is None:
                user = User.objects.create_user(username=name, password=annotator_password, email=f"{name}@example.org")
                self.say(f"Created annotator {name!r}" + (
                    "." if annotator_password == ANNOTATOR_PASSWORD else f" with password {annotator_password!r}."))
            elif not settings.DEBUG and user.check_password(ANNOTATOR_PASSWORD):
                user.set_password(annotator_password)
                user.save(update_fields=["password"])
                self.say(f"Annotator {name!r}: password set to {annotator_password!r}.")
            mark_qualified(user, project or project_ensure(name=DEFAULT_PREFIX))
