"""A/B tests of blast campaigns: 2 to 5 variants (subject, preheader, sender name or another
template) go to a test share of the audience; after a wait the winner, by unique opens,
unique clicks or attributed revenue (or the marketer's pick), goes to the rest, in the same
run.

Decisions:
- Assignment is deterministic and exact: the audience is ranked by a hash of the run id and
  the contact id (`hashtextextended`, in SQL); the first `test_percent` of the ranking is the
  test share, and rank modulo the number of variants is the variant. The same run and
  audience always give the same split; the variants differ in size by one at most.
- The test share is materialised at launch, in the launch's transaction, one INSERT … SELECT
  per variant and channel, each row carrying its variant (Delivery.ab_variant). The rest is
  materialised when the winner is chosen: the whole audience again with the winner's
  content, the ledger's unique key (run, contact, channel, step) skipping the test share. So
  choosing twice, or crashing in between, inserts nothing twice; the winner is written
  under the test's row lock with the rest in one transaction, so it is chosen once.
- The run stays running while it waits for the winner (campaigns.lifecycle.run_complete
  asks `run_awaits_winner`), so neither the run nor the campaign completes in between.
- Figures are counted from the ledger's test share (human opens and clicks: opened_at and
  clicked_at) into the variant rows by the beat task and when a winner is chosen; reports
  read the variant rows. Revenue comes from the apps above through `ab_revenue` (a signal:
  orders are marketing's, a layer up).
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from campaigns import pipeline
from campaigns.lifecycle_input import CampaignInvalid, template_resolve
from campaigns.models import (
    ABTest,
    ABVariant,
    Campaign,
    CampaignRun,
    CampaignStatus,
    CampaignType,
    Delivery,
    RunStatus,
    WinnerMetric,
    WinnerSelection,
)
from config.core.errors import ConflictError
from templates.models import TemplateVersion
from templates.services import TemplateValidationError, template_publish

MIN_VARIANTS = 2
MAX_VARIANTS = 5
MIN_PERCENT = 1
MAX_PERCENT = 50
# A wait longer than this is a typo (a test result a month later is no test).
MAX_WAIT_HOURS = 24 * 30
# Figures of a decided test are still refreshed this long after the decision (late opens,
# clicks and orders of the test share).
FIGURES_AFTER_DECISION = dt.timedelta(days=7)

# Sent with run_id; a receiver answers {variant position: (conversions, revenue)} for the
# orders its rules credit to that run's test-share rows (marketing.attribution).
ab_revenue = Signal()

_T_DELIVERY = Delivery._meta.db_table
# The rank of a contact in a run's hash order: the sign bit is masked (abs() of the smallest
# bigint overflows).
_HASH_OF = "(hashtextextended({key}, 0) & 9223372036854775807)"
_HASH = _HASH_OF.format(key="%s::text || ':' || a.id::text")


def hash_rank(key: str) -> int:
    """The same hash for one key (a workflow's A/B split ranks one run at a time): stable
    across processes and releases, unlike Python's own hash()."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + _HASH_OF.format(key="%s"), [key])
        return int(cursor.fetchone()[0])


def letter(position: int) -> str:
    return chr(ord("A") + position)


# --- input (the campaign body's `abTest`) ---------------------------------------------------


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CampaignInvalid({name: "must be a string"})
    if len(value.strip()) > limit:
        raise CampaignInvalid({name: f"at most {limit} characters"})
    return value.strip()


def _number(value: Any, name: str, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise CampaignInvalid({name: f"must be a number ({what})"})
    if not low <= value <= high:
        raise CampaignInvalid({name: f"must be between {low:g} and {high:g} ({what}), not {value}"})
    return value


def ab_test_clean(value: Any, *, channel: str | None) -> dict | None:
    """Check the body's `abTest` (None or {} removes the test); the values for ab_test_set."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise CampaignInvalid(
            {
                "abTest": 'must be {"variants": [...], "testPercent": 20, "winnerMetric": "opens", '
                '"waitHours": 4, "winnerSelection": "auto"}'
            }
        )
    raw = value.get("variants")
    if not isinstance(raw, list):
        raise CampaignInvalid({"abTest.variants": "must be a list of 2 to 5 variants"})
    if not MIN_VARIANTS <= len(raw) <= MAX_VARIANTS:
        raise CampaignInvalid(
            {"abTest.variants": f"an A/B test has 2 to 5 variants, not {len(raw)}"}
        )
    variants = []
    for position, item in enumerate(raw):
        prefix = f"abTest.variants.{position}"
        if not isinstance(item, dict):
            raise CampaignInvalid(
                {prefix: 'must be {"subject": …, "preheader": …, "fromName": …, "templateId": …}'}
            )
        template = None
        if item.get("templateId") not in (None, ""):
            template = template_resolve(item["templateId"], f"{prefix}.templateId")
            if channel is not None and template.channel != channel:
                raise CampaignInvalid(
                    {
                        f"{prefix}.templateId": f"template {template.pk} is a {template.channel} "
                        f"template but the campaign sends {channel}"
                    }
                )
        variants.append(
            {
                "subject": _text(item.get("subject"), f"{prefix}.subject", 500),
                "preheader": _text(item.get("preheader"), f"{prefix}.preheader", 500),
                "from_name": _text(item.get("fromName"), f"{prefix}.fromName", 200),
                "template": template,
            }
        )
    percent = _number(
        value.get("testPercent", 20),
        "abTest.testPercent",
        MIN_PERCENT,
        MAX_PERCENT,
        "percent of the audience in the test",
    )
    if percent != int(percent):
        raise CampaignInvalid({"abTest.testPercent": "must be a whole percent"})
    metric = value.get("winnerMetric", WinnerMetric.OPENS)
    if metric not in WinnerMetric.values:
        raise CampaignInvalid(
            {
                "abTest.winnerMetric": f"unknown metric {metric!r}; one of "
                + ", ".join(WinnerMetric.values)
            }
        )
    wait = _number(value.get("waitHours", 4), "abTest.waitHours", 0, MAX_WAIT_HOURS, "hours")
    selection = value.get("winnerSelection", WinnerSelection.AUTO)
    if selection not in WinnerSelection.values:
        raise CampaignInvalid({"abTest.winnerSelection": "must be auto or manual"})
    return {
        "variants": variants,
        "test_percent": int(percent),
        "winner_metric": metric,
        "wait": dt.timedelta(hours=wait),
        "winner_selection": selection,
    }


# --- configuration ---------------------------------------------------------------------------


@transaction.atomic
def ab_test_set(*, campaign: Campaign, config: dict | None) -> ABTest | None:
    """Replace the campaign's A/B test (None removes it). The caller holds the campaign row
    locked and has checked that it may be edited; a test already launched cannot change."""
    test = ABTest.objects.select_for_update().filter(campaign=campaign).first()
    if test is not None and test.run_id is not None:
        raise ConflictError("the A/B test has started; it can no longer change", field="abTest")
    if config is None:
        if test is not None:
            test.delete()
        return None
    if campaign.type != CampaignType.BLAST:
        raise CampaignInvalid(
            {"abTest": f"only blast campaigns can carry an A/B test, not {campaign.type}"}
        )
    values = {
        key: config[key] for key in ("test_percent", "winner_metric", "wait", "winner_selection")
    }
    if test is None:
        test = ABTest.objects.create(campaign=campaign, **values)
    else:
        for name, value in values.items():
            setattr(test, name, value)
        test.save()
        test.variants.all().delete()
    ABVariant.objects.bulk_create(
        ABVariant(test=test, position=position, **variant)
        for position, variant in enumerate(config["variants"])
    )
    return test


def ab_test_json(test: ABTest) -> dict:
    """The campaign body's `abTest`, as the API answers it."""
    return {
        "variants": [
            {
                "variant": variant.letter,
                "subject": variant.subject,
                "preheader": variant.preheader,
                "fromName": variant.from_name,
                "templateId": variant.template_id,
            }
            for variant in test.variants.all()
        ],
        "testPercent": test.test_percent,
        "winnerMetric": test.winner_metric,
        "waitHours": test.wait.total_seconds() / 3600,
        "winnerSelection": test.winner_selection,
    }


def ab_test_copy(*, source: Campaign, copy: Campaign) -> None:
    """A duplicated campaign gets the same test, not started."""
    test = ABTest.objects.filter(campaign=source).first()
    if test is None:
        return
    new = ABTest.objects.create(
        campaign=copy,
        test_percent=test.test_percent,
        winner_metric=test.winner_metric,
        wait=test.wait,
        winner_selection=test.winner_selection,
    )
    ABVariant.objects.bulk_create(
        ABVariant(
            test=new,
            position=v.position,
            subject=v.subject,
            preheader=v.preheader,
            from_name=v.from_name,
            template_id=v.template_id,
        )
        for v in test.variants.all()
    )


# --- launch: the test share --------------------------------------------------------------------


def _variant_version(variant: ABVariant, run: CampaignRun) -> TemplateVersion | None:
    """The version a variant's rows send: its own template's latest (published now if it
    never was, as launch does for the campaign's template), else the run's."""
    if variant.template is None:
        return run.template_version
    version = variant.template.versions.order_by("-number").first()
    if version is not None:
        return version
    try:
        with transaction.atomic():
            return template_publish(template=variant.template)
    except TemplateValidationError as exc:
        problems = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        raise ConflictError(
            f"cannot launch: variant {variant.letter}'s template {variant.template_id} cannot "
            f"be published ({problems})",
            field=f"abTest.variants.{variant.position}.templateId",
        ) from None


def _ranked(run: CampaignRun, test: ABTest) -> tuple[str, tuple]:
    """A CTE ranking the audience by the run's hash: (prefix SQL, its parameters)."""
    audience_sql, audience_params = pipeline._audience_sql(run.campaign)
    prefix = f"""WITH ab_ranked AS MATERIALIZED (
        SELECT a.id, row_number() OVER (ORDER BY {_HASH}, a.id) AS rank,
               count(*) OVER () AS total
          FROM ({audience_sql}) a)"""
    return prefix, (run.pk, *audience_params)


def run_materialise(*, run: CampaignRun) -> int:
    """Materialise a run (campaigns.pipeline.run_materialise), only the test share of the
    audience when the campaign carries an A/B test. Returns the reach."""
    campaign = run.campaign
    test = (
        ABTest.objects.select_for_update().filter(campaign=campaign).first()
        if campaign.type == CampaignType.BLAST
        else None
    )
    if test is None or test.run_id is not None:
        return pipeline.run_materialise(run=run)
    variants = list(test.variants.select_related("template"))
    for variant in variants:
        version = _variant_version(variant, run)
        variant.template_version = version
        variant.save(update_fields=["template_version"])
    test.run = run
    test.decide_at = timezone.now() + test.wait
    test.save(update_fields=["run", "decide_at", "updated_at"])
    prefix, prefix_params = _ranked(run, test)
    plan = pipeline.send_rules_args(campaign)
    inserted = 0
    for channel in campaign.channels:
        if channel not in pipeline.SENDABLE_CHANNELS:
            continue
        for variant in variants:
            inserted += pipeline._insert(
                run=run,
                channel=channel,
                step=0,
                version=variant.template_version,
                audience=(
                    """SELECT id FROM ab_ranked
                        WHERE rank <= ceil(total * %s / 100.0) AND mod(rank - 1, %s) = %s""",
                    (test.test_percent, len(variants), variant.position),
                ),
                prefix=prefix,
                prefix_params=prefix_params,
                ab_variant=variant.position,
                **plan,
            )
    return pipeline.run_reach_refresh(run=run, inserted=inserted)


def run_awaits_winner(run: CampaignRun) -> bool:
    """The run sent its test share and waits for the winner: it must not complete."""
    return ABTest.objects.filter(run=run, winner__isnull=True).exists()


# --- the winner ----------------------------------------------------------------------------


def ab_figures_refresh(*, test: ABTest) -> None:
    """Count each variant's test share from the ledger (human opens and clicks) and ask the
    apps above for its revenue; store the figures on the variants."""
    if test.run_id is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT ab_variant, count(*),
                       count(*) FILTER (WHERE opened_at IS NOT NULL OR clicked_at IS NOT NULL),
                       count(*) FILTER (WHERE clicked_at IS NOT NULL)
                  FROM {_T_DELIVERY}
                 WHERE run_id = %s AND ab_variant IS NOT NULL
                 GROUP BY ab_variant""",
            [test.run_id],
        )
        counted = {row[0]: row[1:] for row in cursor.fetchall()}
    revenue: dict[int, tuple[int, Decimal]] = {}
    for _receiver, answer in ab_revenue.send(sender=ab_figures_refresh, run_id=test.run_id):
        answered: dict = answer if isinstance(answer, dict) else {}
        for position, (conversions, amount) in answered.items():
            before = revenue.get(position, (0, Decimal(0)))
            revenue[position] = (before[0] + conversions, before[1] + Decimal(amount))
    variants = list(test.variants.all())
    for variant in variants:
        recipients, opens, clicks = counted.get(variant.position, (0, 0, 0))
        conversions, amount = revenue.get(variant.position, (0, Decimal(0)))
        variant.recipients, variant.unique_opens, variant.unique_clicks = recipients, opens, clicks
        variant.conversions, variant.revenue = conversions, amount
    ABVariant.objects.bulk_update(
        variants, ["recipients", "unique_opens", "unique_clicks", "conversions", "revenue"]
    )
    ABTest.objects.filter(pk=test.pk).update(figures_at=timezone.now())


def _score(variant: ABVariant, metric: str) -> tuple:
    """What the metric ranks by; ties go to the earlier variant (A before B)."""
    if metric == WinnerMetric.REVENUE:
        return (variant.revenue, _rate(variant.conversions, variant.recipients), -variant.position)
    hits = variant.unique_clicks if metric == WinnerMetric.CLICKS else variant.unique_opens
    return (_rate(hits, variant.recipients), -variant.position)


def _rate(hits: int, total: int) -> float:
    return hits / total if total else 0.0


@transaction.atomic
def ab_winner_choose(*, test: ABTest, position: int | None = None, how: str = "") -> ABTest:
    """Choose the winner (the best by the test's metric, or `position`) and materialise the
    rest of the audience with it; its senders start on commit. Once: a test already decided
    is answered as it is (a pick by hand of another variant is a 409)."""
    locked = (
        ABTest.objects.select_for_update(of=("self",))
        .select_related("run__campaign")
        .get(pk=test.pk)
    )
    if locked.run is None:
        raise ConflictError("the A/B test has not started yet", field="variant")
    if locked.winner is not None:
        if position is not None and position != locked.winner:
            raise ConflictError(
                f"variant {letter(locked.winner)} already won ({locked.decided_how})",
                field="variant",
            )
        return locked
    if locked.run.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
        raise ConflictError(
            f"the campaign's run is {locked.run.status}; no winner can be sent", field="variant"
        )
    ab_figures_refresh(test=locked)
    variants = list(locked.variants.all())
    if position is None:
        best = max(variants, key=lambda v: _score(v, locked.winner_metric))
        position = best.position
        how = how or f"automatically, by {WinnerMetric(locked.winner_metric).label.lower()}"
    winner = next((v for v in variants if v.position == position), None)
    if winner is None:
        raise CampaignInvalid({"variant": f"no variant {letter(position)} in this test"})
    locked.winner = position
    locked.decided_at = timezone.now()
    locked.decided_how = how or "picked by hand"
    locked.save(update_fields=["winner", "decided_at", "decided_how", "updated_at"])
    run = locked.run
    campaign = run.campaign
    inserted = 0
    for channel in campaign.channels:
        if channel in pipeline.SENDABLE_CHANNELS:
            inserted += pipeline._insert(
                run=run,
                channel=channel,
                step=0,
                version=winner.template_version,
                audience=pipeline._audience_sql(campaign),
                **pipeline.send_rules_args(campaign),
            )
    pipeline.run_reach_refresh(run=run, inserted=inserted)
    if run.status == RunStatus.RUNNING:
        run_id = run.pk
        transaction.on_commit(lambda: pipeline.run_enqueue(run_id=run_id))
    return locked


def ab_winner_pick(*, test: ABTest, variant: str, user: Any = None) -> ABTest:
    """The marketer's pick ("B"), from the report or the API."""
    if not isinstance(variant, str) or len(variant.strip()) != 1 or not variant.strip().isalpha():
        raise CampaignInvalid({"variant": "must be a variant letter such as A or B"})
    position = ord(variant.strip().upper()) - ord("A")
    if not 0 <= position < test.variants.count():
        raise CampaignInvalid({"variant": f"no variant {variant.strip().upper()} in this test"})
    who = getattr(user, "get_username", lambda: "")() if user is not None else ""
    return ab_winner_choose(
        test=test, position=position, how=f"picked by {who}" if who else "picked by hand"
    )


def ab_tests_due(*, now: dt.datetime | None = None) -> dict:
    """The beat task's work: refresh the figures of running tests, and choose the winner of
    every automatic test whose wait is over (a manual one waits for the marketer). One
    transaction per test; a test another worker holds is left to it."""
    now = now or timezone.now()
    chosen = refreshed = 0
    live = ABTest.objects.filter(run__isnull=False).exclude(
        decided_at__lt=now - FIGURES_AFTER_DECISION
    )
    for test in live:
        ab_figures_refresh(test=test)
        refreshed += 1
    due = ABTest.objects.filter(
        winner__isnull=True,
        run__isnull=False,
        decide_at__lte=now,
        winner_selection=WinnerSelection.AUTO,
        run__status=RunStatus.RUNNING,
        run__campaign__status=CampaignStatus.RUNNING,
    ).values_list("pk", flat=True)
    for pk in due:
        with transaction.atomic():
            due_test = ABTest.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if due_test is not None and due_test.winner is None:
                ab_winner_choose(test=due_test)
                chosen += 1
    return {"refreshed": refreshed, "chosen": chosen}


# --- results ---------------------------------------------------------------------------------


def _confidence(hits: int, total: int, other_hits: int, other_total: int) -> float | None:
    """Two-proportion z-test: the confidence (0 to 100) that the two rates differ."""
    if not total or not other_total:
        return None
    pooled = (hits + other_hits) / (total + other_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total + 1 / other_total))
    if spread == 0:
        return 0.0
    z = abs(hits / total - other_hits / other_total) / spread
    return round(math.erf(z / math.sqrt(2)) * 100, 1)


def _hits(variant: ABVariant, metric: str) -> int:
    if metric == WinnerMetric.CLICKS:
        return variant.unique_clicks
    if metric == WinnerMetric.REVENUE:
        return variant.conversions
    return variant.unique_opens


def ab_results(test: ABTest) -> dict:
    """The test for reports: each variant's figures, rates and the confidence of its
    difference from the best other variant (on the test's metric; for revenue, on the
    conversion rate), the winner and how it was chosen."""
    variants = list(test.variants.all())
    metric = test.winner_metric
    rows = []
    for variant in variants:
        others = [v for v in variants if v.pk != variant.pk]
        best = max(others, key=lambda v: _score(v, metric)) if others else None
        confidence = (
            _confidence(
                _hits(variant, metric), variant.recipients, _hits(best, metric), best.recipients
            )
            if best is not None
            else None
        )
        rows.append(
            {
                "variant": variant.letter,
                "position": variant.position,
                "subject": variant.subject,
                "preheader": variant.preheader,
                "fromName": variant.from_name,
                "templateId": variant.template_id,
                "recipients": variant.recipients,
                "uniqueOpens": variant.unique_opens,
                "uniqueClicks": variant.unique_clicks,
                "conversions": variant.conversions,
                "revenue": variant.revenue,
                "openRate": round(_rate(variant.unique_opens, variant.recipients) * 100, 2),
                "clickRate": round(_rate(variant.unique_clicks, variant.recipients) * 100, 2),
                "conversionRate": round(_rate(variant.conversions, variant.recipients) * 100, 2),
                "comparedWith": best.letter if best is not None else None,
                "confidence": confidence,
                "winner": test.winner == variant.position,
            }
        )
    if test.run_id is None:
        state = "draft"
    elif test.winner is not None:
        state = "decided"
    elif (
        test.winner_selection == WinnerSelection.MANUAL
        and test.decide_at is not None
        and test.decide_at <= timezone.now()
    ):
        state = "awaiting pick"
    else:
        state = "testing"
    return {
        "campaignId": test.campaign_id,
        "runId": test.run_id,
        "state": state,
        "testPercent": test.test_percent,
        "winnerMetric": metric,
        "waitHours": test.wait.total_seconds() / 3600,
        "winnerSelection": test.winner_selection,
        "decideAt": test.decide_at,
        "winner": letter(test.winner) if test.winner is not None else None,
        "decidedAt": test.decided_at,
        "decidedHow": test.decided_how,
        "figuresAt": test.figures_at,
        "variants": rows,
    }
