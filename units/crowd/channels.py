"""Outside crowds of a project: credentials, costs and the budget cap, and what publishing to a channel checks.

Credentials: a project's owner may store its own (the secrets encrypted with Fernet, under a key derived
from CROWD_CREDENTIALS_KEY or else SECRET_KEY); a project without them uses the site's, from the
environment. Secrets leave this module only inside a `Credentials`, whose repr hides them, and only
towards the marketplace's client: no page, export, log line or API response carries them.

Cost: what a batch would cost if every assignment were approved: reward x assignments plus the
marketplace's fee. MTurk charges 20% of the reward (at least $0.01 an assignment), and 20% more for a
HIT with 10 or more assignments. Prolific charges its platform fee on the rewards paid to participants,
a share set by PROLIFIC_FEE_RATE (Prolific's pricing: 42.8% for companies, 33.3% for academic and
non-profit researchers; VAT on the fee, where due, is not counted). Amounts are rounded half up to the
cent. The budget cap counts the batches on real-money channels (MTurk live, Prolific); the sandbox
costs nothing.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from units.projects.models import Activity, Project
from units.projects.services import activity_record

from .errors import PublishError
from .models import Channel, ChannelSettings, HitBatch

CENT = Decimal("0.01")
MTURK_FEE = Decimal("0.20")
MTURK_LARGE_HIT_FEE = Decimal("0.40")  # 10 or more assignments per HIT
MTURK_LARGE_HIT = 10
MTURK_MIN_FEE = CENT
MTURK_CHANNELS = (Channel.MTURK_SANDBOX, Channel.MTURK_LIVE)
PAID_CHANNELS = (Channel.MTURK_LIVE, Channel.PROLIFIC)


# --- secrets -----------------------------------------------------------------------------------------

def _fernet() -> Fernet:
    secret = settings.CROWD_CREDENTIALS_KEY or settings.SECRET_KEY
    key = hashlib.sha256(b"unitcrowd.crowd-credentials:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def secret_decrypt(token: str) -> str:
    """The stored secret, or "" when there is none or it cannot be read (the key changed)."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


@dataclass(frozen=True)
class Credentials:
    """A project's marketplace credentials; repr and str never show the secrets."""

    mturk_access_key_id: str = ""
    mturk_secret: str = field(default="", repr=False)
    prolific_token: str = field(default="", repr=False)
    source: str = "none"  # "project", "environment" or "none", per marketplace: see channel_credentials

    @property
    def has_mturk(self) -> bool:
        return bool(self.mturk_access_key_id and self.mturk_secret)

    @property
    def has_prolific(self) -> bool:
        return bool(self.prolific_token)


def channel_settings_of(project: Project | int) -> ChannelSettings | None:
    project_id = project if isinstance(project, int) else project.pk
    return ChannelSettings.objects.filter(project_id=project_id).first()


def channel_credentials(project: Project | int) -> Credentials:
    """The project's stored credentials, marketplace by marketplace, else the site's from the environment."""
    stored = channel_settings_of(project)
    key_id, secret = (stored.mturk_access_key_id, secret_decrypt(stored.mturk_secret_encrypted)) if stored else ("", "")
    token = secret_decrypt(stored.prolific_token_encrypted) if stored else ""
    source = "project" if (key_id and secret) or token else "none"
    if not (key_id and secret):
        key_id, secret = settings.MTURK_AWS_ACCESS_KEY_ID, settings.MTURK_AWS_SECRET_ACCESS_KEY
        source = "environment" if key_id and secret and source == "none" else source
    if not token:
        token = settings.PROLIFIC_API_TOKEN
        source = "environment" if token and source == "none" else source
    return Credentials(mturk_access_key_id=key_id, mturk_secret=secret, prolific_token=token, source=source)


def channel_configured(project: Project | int, channel: str) -> bool:
    if channel == Channel.SITE:
        return True
    creds = channel_credentials(project)
    return creds.has_prolific if channel == Channel.PROLIFIC else creds.has_mturk


@transaction.atomic
def channel_settings_update(*, project: Project, by, mturk_access_key_id: str | None = None,
                            mturk_secret: str | None = None, prolific_token: str | None = None,
                            budget_cap: Decimal | None = None, prolific_completion_code: str = "",
                            prolific_hits_per_participant: int = 10, prolific_workspace_id: str = "",
                            quality_min_pass_rate: float | None = None,
                            quality_min_answers: int = 10, clear_credentials: bool = False) -> ChannelSettings:
    """Save a project's channel settings. A secret given as None or "" keeps the stored one (the page never
    shows it back); `clear_credentials` forgets them all."""
    row, _ = ChannelSettings.objects.select_for_update().get_or_create(project=project)
    if clear_credentials:
        row.mturk_access_key_id = row.mturk_secret_encrypted = row.prolific_token_encrypted = ""
    else:
        if mturk_access_key_id is not None:
            row.mturk_access_key_id = mturk_access_key_id.strip()
        if mturk_secret:
            row.mturk_secret_encrypted = secret_encrypt(mturk_secret.strip())
        if prolific_token:
            row.prolific_token_encrypted = secret_encrypt(prolific_token.strip())
    row.budget_cap = budget_cap
    row.prolific_completion_code = prolific_completion_code.strip()
    row.prolific_hits_per_participant = prolific_hits_per_participant
    row.prolific_workspace_id = prolific_workspace_id.strip()
    row.quality_min_pass_rate, row.quality_min_answers = quality_min_pass_rate, quality_min_answers
    row.save()
    # The log names what changed, never a value.
    activity_record(project=project, actor=by, verb=Activity.Verb.CHANNELS_CHANGED,
                    summary="crowd channels: " + ("credentials cleared" if clear_credentials else "settings saved"))
    return row


# --- cost and budget -----------------------------------------------------------------------------------

def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def prolific_fee_rate() -> Decimal:
    return Decimal(str(settings.PROLIFIC_FEE_RATE))


def assignment_fee(channel: str, reward: Decimal, assignments_per_hit: int) -> Decimal:
    """The marketplace's fee on one approved MTurk assignment (Prolific's is taken on the total: batch_cost)."""
    if channel not in MTURK_CHANNELS:
        return Decimal("0.00")
    rate = MTURK_LARGE_HIT_FEE if assignments_per_hit >= MTURK_LARGE_HIT else MTURK_FEE
    return max(MTURK_MIN_FEE, _cents(Decimal(reward) * rate))


@dataclass(frozen=True)
class Cost:
    hits: int
    assignments: int
    rewards: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.rewards + self.fees

    def __str__(self) -> str:
        return f"${self.total} ({self.assignments} assignments: ${self.rewards} rewards + ${self.fees} fees)"


def batch_cost(*, channel: str, reward: Decimal, assignments_per_hit: int, hits: int) -> Cost:
    reward = _cents(Decimal(reward))
    n = hits * assignments_per_hit
    if channel == Channel.PROLIFIC:
        return Cost(hits=hits, assignments=n, rewards=reward * n, fees=_cents(reward * n * prolific_fee_rate()))
    return Cost(hits=hits, assignments=n, rewards=reward * n,
                fees=assignment_fee(channel, reward, assignments_per_hit) * n)


def project_spending(project_id: int) -> Decimal:
    """What the project's real-money batches cost at most (every assignment approved)."""
    total = Decimal("0.00")
    rows = (HitBatch.objects.filter(project_id=project_id, channel__in=PAID_CHANNELS)
            .annotate(n_hits=Count("hits")).values("channel", "reward", "assignments_per_hit", "n_hits"))
    for row in rows:
        total += batch_cost(channel=row["channel"], reward=row["reward"],
                            assignments_per_hit=row["assignments_per_hit"], hits=row["n_hits"]).total
    return total


def budget_left(project_id: int) -> Decimal | None:
    stored = channel_settings_of(project_id)
    if stored is None or stored.budget_cap is None:
        return None
    return stored.budget_cap - project_spending(project_id)


def channel_publish_check(*, project_id: int, channel: str) -> None:
    """What publishing to `channel` needs before any HIT exists; a PublishError says what is missing."""
    if channel not in Channel.values:
        raise PublishError(f"Unknown crowd channel {channel!r}; choose one of {', '.join(Channel.values)}.")
    if channel == Channel.SITE:
        return
    if not channel_configured(project_id, channel):
        raise PublishError(f"No credentials for {Channel(channel).label}: the project's owner sets them on the "
                           f"project's crowd-channel page (or the site's administrator in the environment).")
    if not settings.SITE_URL.startswith("https://"):
        raise PublishError(f"Outside crowds open this site's pages from SITE_URL, which must be an https:// "
                           f"address reachable from the internet (it is {settings.SITE_URL}).")


def budget_enforce(*, batch: HitBatch, hits: int) -> Cost:
    """Refuse (PublishError) a real-money batch that takes its project past the budget cap; call it inside
    the transaction that created the batch's `hits` HITs, so a refusal leaves no HIT behind.

    The project's settings row is locked first: two publishes at once would each see the other's batch as
    not yet there and together pass the cap."""
    cost = batch_cost(channel=batch.channel, reward=batch.reward, assignments_per_hit=batch.assignments_per_hit,
                      hits=hits)
    if batch.channel not in PAID_CHANNELS:
        return cost
    stored = ChannelSettings.objects.select_for_update().filter(project_id=batch.project_id).first()
    if stored is None or stored.budget_cap is None:
        return cost
    spent = project_spending(batch.project_id)  # this batch included
    if spent > stored.budget_cap:
        left = max(stored.budget_cap - (spent - cost.total), Decimal("0.00"))
        raise PublishError(f"This batch would cost up to {cost}, more than the ${left} left of the project's "
                           f"budget cap of ${stored.budget_cap}.")
    return cost


def channel_notice(project_id: int) -> str:
    """One line for the publish page: which outside crowds are set up, the fee rule and the budget left."""
    creds = channel_credentials(project_id)
    left = budget_left(project_id)
    return (f"Mechanical Turk: {'credentials set' if creds.has_mturk else 'no credentials'}; "
            f"Prolific: {'credentials set' if creds.has_prolific else 'no credentials'}. "
            f"MTurk adds a fee of 20% of the reward (40% for HITs with {MTURK_LARGE_HIT} or more assignments); "
            f"Prolific adds {prolific_fee_rate() * 100:.1f}% of the rewards. "
            + (f"Budget left: ${left}." if left is not None else "No budget cap set."))
