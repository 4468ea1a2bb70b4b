"""The HTTP core (login, retries, pagination, errors) and the resources built on it.

Retries: calls are retried on 429, 503 and a refused or dropped connection, with exponential backoff,
waiting at least what the server's Retry-After asks. Every POST carries an Idempotency-Key (one per
call, the same on its retries) that the server honours (annotate_site/idempotency.py): a retried
create returns the first answer instead of creating twice. A POST sent without a key (key=False)
is retried only on 429, which the throttles answer before anything is written.

Uploads stream their file as a multipart body (requests-toolbelt's MultipartEncoder, so a large
checkpoint or zip is never read into memory whole) and report the bytes sent to a progress
callback, or to a tqdm bar with progress=True; a retried upload starts its body again.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

from .errors import AuthenticationError, ConflictError, NotFound, ServerUnavailable, UnitCrowdError, error_for
from .models import Dataset, Export, HitBatch, Job, Label, LabelTable, Layer, Network, Unit, build

RETRY_STATUSES = (429, 503)
# progress(bytes sent, bytes in all) during an upload; True shows a tqdm bar on stderr.
Progress = Callable[[int, int], object] | bool | None
IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


class UnitCrowd:
    """A session with one UnitCrowd server.

    uc = UnitCrowd("https://crowd.example.org", token="...")          # a token from POST /api/auth/token/
    uc = UnitCrowd("https://crowd.example.org", username="rita", password="...")  # logs in, renews on expiry
    """

    def __init__(self, url: str, *, token: str | None = None, username: str | None = None,
                 password: str | None = None, timeout: float = 60.0, retries: int = 4, backoff: float = 0.5,
                 max_retry_wait: float = 60.0, api_prefix: str = "api/v1/") -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if token is None and (username is None or password is None):
            raise ValueError("Give token=..., or username=... and password=... (a requester's account).")
        self.url = url.rstrip("/") + "/"
        self.api = urljoin(self.url, api_prefix)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "unitcrowd-client/0.1"
        self._username, self._password = username, password
        self.token = token
        if token is None:
            self.login()
        self.networks = Networks(self)
        self.datasets = Datasets(self)
        self.jobs = Jobs(self)
        self.layers = Layers(self)
        self.units = Units(self)
        self.hits = Hits(self)
        self.exports = Exports(self)

    # --- authentication ---------------------------------------------------------------------------

    def login(self) -> str:
        """A new token from the user name and password (POST /api/auth/token/)."""
        if self._username is None or self._password is None:
            raise AuthenticationError("The token was refused and no username/password were given to log in again.",
                                      status=401)
        self.token = None
        body = self._send("POST", "auth/token/", json={"username": self._username, "password": self._password},
                          auth=False)
        self.token = body["token"]
        return self.token

    # --- HTTP -------------------------------------------------------------------------------------

    def _full(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        # "/media/..." (a URL the server handed out) is from the site's root; "jobs/" is under the API's prefix.
        return urljoin(self.url, path) if path.startswith("/") else urljoin(self.api, path)

    def _retry_wait(self, attempt: int, response: requests.Response | None) -> float:
        wait = self.backoff * (2 ** attempt)
        header = response.headers.get("Retry-After") if response is not None else None
        if header:
            try:
                wait = max(wait, float(header))
            except ValueError:
                with contextlib.suppress(TypeError, ValueError):  # an HTTP date, or nothing usable
                    wait = max(wait, parsedate_to_datetime(header).timestamp() - time.time())
        return min(wait, self.max_retry_wait)

    def request(self, method: str, path: str, *, auth: bool = True, stream: bool = False, key: bool = True,
                body: Callable[[], MultipartEncoderMonitor] | None = None, **kwargs: Any) -> requests.Response:
        """One call with retries and one token renewal; raises a UnitCrowdError subclass on any error answer.

        `body` makes a fresh streaming multipart body for each try (an upload's stream is spent once sent)."""
        method = method.upper()
        renewed = False
        attempt = 0
        keyed = method == "POST" and auth and key
        if keyed:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Idempotency-Key": uuid.uuid4().hex}
        safe = method in IDEMPOTENT or keyed
        while True:
            headers = dict(kwargs.pop("headers", None) or {})
            if auth and self.token:
                headers["Authorization"] = f"Token {self.token}"
            if body is not None:
                kwargs["data"] = body()
                headers["Content-Type"] = kwargs["data"].content_type
            try:
                response = self.session.request(method, self._full(path), headers=headers, timeout=self.timeout,
                                                stream=stream, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if safe and attempt < self.retries:
                    time.sleep(self._retry_wait(attempt, None))
                    attempt += 1
                    continue
                what = "" if safe else (" A POST without an idempotency key is not retried: check with .list() "
                                         "whether it was created before sending it again.")
                raise ServerUnavailable(f"Cannot reach {self.url} ({type(exc).__name__}: {exc}).{what}") from None
            kwargs["headers"] = headers
            status = response.status_code
            retryable = status == 429 or (status == 503 and safe)
            if retryable and attempt < self.retries:
                time.sleep(self._retry_wait(attempt, response))
                attempt += 1
                continue
            if status == 401 and auth and not renewed and self._password is not None:
                self.login()  # the token expired or was revoked: one new one, then the call again
                renewed = True
                continue
            if status >= 400:
                raise error_for(status, _body(response))
            return response

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return _body(response) if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params=params or None)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._send("POST", path, json=json, **kwargs)

    def paginate(self, path: str, **params: Any) -> Iterator[dict]:
        """Every row of a list endpoint, following `next` across pages."""
        body = self.get(path, **params)
        while True:
            if isinstance(body, list):
                yield from body
                return
            yield from body["results"]
            if not body.get("next"):
                return
            body = self._send("GET", body["next"])

    # --- labels -----------------------------------------------------------------------------------

    def labels(self, job: int | Job, layer: str) -> LabelTable:
        """A layer's crowd labels next to the IoU labels, one row per labelled unit."""
        job_id = _id(job)
        rows = [Label.from_api(r) for r in self.paginate("labels/", job=job_id, layer=layer, page_size=1000)]
        if not rows:
            self.layers.get(job_id, layer)  # NotFound with the known layers if the name is wrong
        return LabelTable(job=job_id, layer=layer, rows=rows)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> UnitCrowd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _body(response: requests.Response) -> Any:
    if "json" in response.headers.get("Content-Type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def _id(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    if hasattr(obj, "id"):
        return int(obj.id)
    raise TypeError(f"Expected an id or an object with .id, got {obj!r}")


class _Resource:
    def __init__(self, client: UnitCrowd) -> None:
        self.client = client

    def _upload(self, path: str, data: dict, field: str, file: Path, what: str, hint: str = "",
                progress: Progress = None) -> dict:
        """POST `data` as a form with `file` as its `field`, streamed (multipart); a missing file is named as
        `what`; `progress` hears of every chunk sent."""
        if not file.is_file():
            raise FileNotFoundError(f"No {what} at {file}{hint}.")
        fields: list[tuple[str, Any]] = []
        for key, value in data.items():  # a list is the field repeated, as an HTML form sends it
            fields += [(key, str(v)) for v in (value if isinstance(value, (list, tuple)) else [value])]
        with file.open("rb") as handle, _reporter(progress, file.name) as report:

            def body() -> MultipartEncoderMonitor:
                handle.seek(0)
                encoder = MultipartEncoder([*fields, (field, (file.name, handle, "application/octet-stream"))])
                return MultipartEncoderMonitor(encoder, lambda m: report(m.bytes_read, m.len))

            return self.client._send("POST", path, body=body)


@contextlib.contextmanager
def _reporter(progress: Progress, name: str) -> Iterator[Callable[[int, int], object]]:
    """A callback(sent, total) for `progress`: the caller's own, a tqdm bar (True) or nothing."""
    if progress is True:
        from tqdm import tqdm

        with tqdm(desc=f"upload {name}", unit="B", unit_scale=True, unit_divisor=1024) as bar:

            def update(sent: int, total: int) -> None:
                if bar.total != total or sent < bar.n:  # the first chunk, or a retry starting again
                    bar.reset(total=total)
                bar.update(sent - bar.n)

            yield update
    elif callable(progress):
        yield progress
    else:
        yield lambda sent, total: None


class Networks(_Resource):
    def list(self) -> list[Network]:
        return [build(Network, r) for r in self.client.paginate("networks/")]

    def get(self, id: int) -> Network:
        return build(Network, self.client.get(f"networks/{id}/"))

    def register(self, name: str, *, project: int | str, arch: str, checkpoint: str | os.PathLike | None = None,
                 num_classes: int | None = None, description: str = "", progress: Progress = None,
                 **fields: Any) -> Network:
        """Register a network in `project` (its id or name); the checkpoint file is uploaded and the server keeps
        it only if the engine loads it for `arch` (else ValidationError with the server's reason).
        `progress`: a callback(bytes sent, bytes in all) during the upload, or True for a progress bar."""
        data = {"project": project, "name": name, "architecture": arch, "description": description, **fields}
        if num_classes is not None:
            data["num_classes"] = num_classes
        data = {k: v for k, v in data.items() if v is not None}
        if checkpoint is None:
            return build(Network, self.client.post("networks/", data))
        return build(Network, self._upload("networks/", data, "checkpoint", Path(checkpoint),
                                           "checkpoint file", "; give the path of a .pth file", progress))


class Datasets(_Resource):
    def list(self) -> list[Dataset]:
        return [build(Dataset, r) for r in self.client.paginate("datasets/")]

    def get(self, id: int) -> Dataset:
        return build(Dataset, self.client.get(f"datasets/{id}/"))

    def register(self, name: str, *, project: int | str, kind: str = "broden", zip: str | os.PathLike | None = None,
                 path: str | None = None, description: str = "", progress: Progress = None,
                 **fields: Any) -> Dataset:
        """Register a probe dataset in `project` (its id or name): `zip` uploads a zip of its folder (`progress`
        as for networks.register); `path` names a folder on the server."""
        if (zip is None) == (path is None):
            raise ValueError("Give exactly one of zip= (a local zip file to upload) or path= (a folder on the server).")
        data = {"project": project, "name": name, "kind": kind, "description": description, **fields}
        if path is not None:
            return build(Dataset, self.client.post("datasets/", {**data, "path": path}))
        return build(Dataset, self._upload("datasets/", data, "archive", Path(zip), "zip file",  # type: ignore[arg-type]
                                           progress=progress))


class Jobs(_Resource):
    def _job(self, body: dict) -> Job:
        return build(Job, body, client=self.client)

    def list(self, **filters: Any) -> list[Job]:
        """Jobs, newest first; filters: status, network, dataset."""
        return [self._job(r) for r in self.client.paginate("jobs/", **filters)]

    def get(self, id: int) -> Job:
        return self._job(self.client.get(f"jobs/{id}/"))

    def create(self, network: int | Network, dataset: int | Dataset, *, layers: builtins.list[str],
               start: bool = True, **options: Any) -> Job:
        """A dissection job on the named layers, queued at once unless start=False; options: top_k, quantile,
        iou_rule, batch_size, shards, samples, sample_seed, token_grid ("14x20": token layers that are no square
        grid). Call .wait() on the result."""
        if isinstance(layers, str):
            raise TypeError("layers is a list of module names, e.g. layers=['layer4']")
        body = {"network": _id(network), "dataset": _id(dataset), "layers": list(layers), "start": start, **options}
        return self._job(self.client.post("jobs/", body))

    def start(self, job: int | Job) -> Job:
        return self._job(self.client.post(f"jobs/{_id(job)}/start/"))


class Layers(_Resource):
    def list(self, job: int | Job) -> list[Layer]:
        return [build(Layer, r) for r in self.client.paginate("layers/", job=_id(job))]

    def get(self, job: int | Job, name: str) -> Layer:
        layers = self.list(job)
        for layer in layers:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in layers) or "none yet (has the job finished?)"
        raise NotFound(f"Job {_id(job)} has no layer {name!r}; its layers: {known}.", status=404)


class Units(_Resource):
    def list(self, job: int | Job, layer: str, **filters: Any) -> list[Unit]:
        return [build(Unit, r) for r in self.client.paginate("units/", job=_id(job), layer_name=layer, **filters)]

    def get(self, job: int | Job, layer: str, unit: int) -> Unit:
        """A unit by its number counted from 1, as on the pages."""
        if unit < 1:
            raise ValueError(f"Units are numbered from 1 (as on the pages and in tally.csv), got {unit}.")
        for row in self.list(job, layer):
            if row.index == unit - 1:
                return row
        raise NotFound(f"Layer {layer!r} of job {_id(job)} has no unit {unit}.", status=404)

    def pictures(self, job: int | Job, layer: str, unit: int, *, kind: str = "top",
                 plain: bool = False) -> builtins.list:
        """The unit's exemplar pictures (highlighted, or plain=True) as PIL images; needs the `pictures` extra."""
        try:
            from PIL import Image
        except ImportError:
            raise ImportError("pictures() needs Pillow: pip install 'unitcrowd-client[pictures]'") from None
        row = self.get(job, layer, unit)
        images = []
        for ex in self.client.paginate("exemplars/", unit=row.id, kind=kind):
            response = self.client.request("GET", ex["plain_url" if plain else "picture_url"])
            images.append(Image.open(io.BytesIO(response.content)))
        return images


class Hits(_Resource):
    def publish(self, job: int | Job, *, layers: list[str], assignments: int = 3, **settings: Any) -> HitBatch | None:
        """Publish one HIT per unit of the named layers; None when every unit already has one (nothing new).
        settings: reward, lifetime_seconds, assignment_duration_seconds, exemplars_shown, sentinels, skip_dead,
        channel ("site", "mturk_sandbox", "mturk_live" or "prolific": where the workers come from),
        redundancy_probability and redundancy_cap (one more answer while a unit's label is less probable than
        the first, up to the second answers per unit; absent: the site's defaults)."""
        ids = [self.client.layers.get(job, name).id for name in layers]
        body = self.client.post("hit-batches/", {"layers": ids, "assignments_per_hit": assignments, **settings})
        return build(HitBatch, body) if isinstance(body, dict) and "id" in body else None

    def list(self, **filters: Any) -> list[dict]:
        return list(self.client.paginate("hits/", **filters))


class Exports(_Resource):
    def create(self, job: int | Job, kind: str, *, layer: str | None = None) -> Export:
        body: dict[str, Any] = {"kind": kind, "job": _id(job)}
        if layer is not None:
            body["layer"] = self.client.layers.get(job, layer).id
        return build(Export, self.client.post("exports/", body))

    def get(self, id: int) -> Export:
        return build(Export, self.client.get(f"exports/{id}/"))

    def download(self, job: int | Job, kind: str, *, layer: str | None = None, to: str | os.PathLike,
                 timeout: float = 600.0, poll: float = 1.0) -> Path:
        """Create an export (kind: units_csv, units_json, tally, mturk, milan), wait for it, save it to `to`."""
        export = self.create(job, kind, layer=layer)
        deadline = time.monotonic() + timeout
        while export.status not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                raise ConflictError(f"Export {export.id} is still {export.status} after {timeout} s.", status=409)
            time.sleep(poll)
            export = self.get(export.id)
        if export.status == "failed":
            raise UnitCrowdError(f"Export {export.id} failed: {export.error_message}")
        target = Path(to)
        url = f"exports/{export.id}/download/"
        with self.client.request("GET", url, stream=True) as response, target.open("wb") as out:
            for chunk in response.iter_content(1 << 16):
                out.write(chunk)
        return target
