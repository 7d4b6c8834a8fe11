"""The sync rules applied to a claimed chunk: which items are pushes, voids or pulls, in dependency order.

Order inside a chunk: customers and items first (invoices depend on them), then invoices, then voids, then pulls.
Every item gets an Outcome; one item's problem never fails its neighbours.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from django.utils import timezone

from qbo_sync import registry
from qbo_sync.exceptions import QboApiError, QboConfigurationError, QboSyncError
from qbo_sync.models import QboConnection, QueueItem
from qbo_sync.services import pull, push
from qbo_sync.services.context import SyncContext
from qbo_sync.services.outcomes import Outcome, Result, outcome_for_error

logger = logging.getLogger(__name__)

#: Push order inside a chunk (the registry's dependency order).
ORDER = list(registry.push_order())


def process_chunk(organization_id: int, items: Sequence[QueueItem]) -> dict[int, Outcome]:
    try:
        ctx = SyncContext.for_organization(organization_id, job_id=items[0].job_id if items else None)
    except QboConnection.DoesNotExist:
        return {i.pk: Outcome.wait("this organization is not connected to QuickBooks") for i in items}
    except QboApiError as exc:
        return {i.pk: outcome_for_error(exc) for i in items}
    except QboSyncError as exc:  # not connected / needs re-authorisation
        return {i.pk: Outcome.wait(str(exc)) for i in items}
    if not ctx.connection.is_usable:
        message = ctx.connection.last_error or f"the QuickBooks connection is {ctx.connection.status}"
        return {i.pk: Outcome.wait(message) for i in items}

    leaders, followers = coalesce(items)
    outcomes: dict[int, Outcome] = busy_elsewhere(organization_id, leaders)
    groups: dict[tuple[str, str], list[QueueItem]] = defaultdict(list)
    for item in leaders:
        if item.pk not in outcomes:
            groups[(item.entity_type, item.operation)].append(item)

    def run(key: tuple[str, str], func: Callable[..., dict[push.PushRequest, Outcome]], *args: str) -> None:
        batch = groups.pop(key, [])
        if not batch:
            return
        requests = {push.PushRequest.of(item): item for item in batch}
        try:
            done = func(ctx, *args, list(requests)) if args else func(ctx, list(requests))
            outcomes.update({requests[request].pk: outcome for request, outcome in done.items()})
        except (QboApiError, QboConfigurationError) as exc:
            outcome = outcome_for_error(exc)
            outcomes.update({i.pk: outcome for i in batch if i.pk not in outcomes})

    push_ops = (QueueItem.Operation.PUSH, QueueItem.Operation.CREATE, QueueItem.Operation.UPDATE)
    for entity in registry.push_order():
        if registry.spec(entity).name_list:
            for op in push_ops:
                run((entity, op), push.push_names, entity)
    for op in push_ops:
        run(("Invoice", op), push.push_invoices)
    run(("Invoice", QueueItem.Operation.VOID), push.void_invoices)
    for (entity, operation), batch in list(groups.items()):
        if operation == QueueItem.Operation.PULL:
            groups.pop((entity, operation))
            for item in batch:
                outcomes[item.pk] = pull.run_pull_item(ctx, item)
    for batch in groups.values():
        for item in batch:
            outcomes[item.pk] = Outcome.failed(f"{item.entity_type} cannot be {item.operation}ed: it does not sync "
                                               "that way")
    for item in leaders:
        outcomes.setdefault(item.pk, Outcome.retry("no outcome was recorded; will try again"))
    for item in items:
        leader = followers.get(item.pk)
        if leader is not None:
            outcomes[item.pk] = coalesced_outcome(leader, outcomes[leader.pk])
    return outcomes


#: Operations that write the same thing for a host row: two of them in one chunk are one write.
PUSH_OPERATIONS = frozenset({QueueItem.Operation.PUSH, QueueItem.Operation.CREATE, QueueItem.Operation.UPDATE})


def coalesce(items: Sequence[QueueItem]) -> tuple[list[QueueItem], dict[int, QueueItem]]:
    """One write per host row: ``(leaders, {follower pk: its leader})``.

    A save-signal push and "sync selected" of the same row, two overlapping jobs, or two pushes of the same
    invoices put several items for one row into a chunk; only the first (in claim order: real-time first) is
    processed, the others share its outcome. Pushes (push, create, update) coalesce together, voids with voids;
    pulls never (each belongs to its own job).
    """
    leaders: list[QueueItem] = []
    followers: dict[int, QueueItem] = {}
    first: dict[tuple[str, str, str], QueueItem] = {}
    for item in items:
        if item.operation == QueueItem.Operation.PULL or not item.object_id:
            leaders.append(item)
            continue
        kind = "push" if item.operation in PUSH_OPERATIONS else str(item.operation)
        key = (item.entity_type, kind, item.object_id)
        if key in first:
            followers[item.pk] = first[key]
        else:
            first[key] = item
            leaders.append(item)
    return leaders, followers


#: Seconds an item waits while another worker is writing the same host row (no attempt is spent).
BUSY_WAIT_SECONDS = 5.0


def busy_elsewhere(organization_id: int, items: Sequence[QueueItem]) -> dict[int, Outcome]:
    """Items whose host row another worker is writing right now: they wait a few seconds (no attempt spent).

    Two overlapping jobs can put the same rows into two chunks that two workers hold at once (PostgreSQL). Both
    would send a create; for invoices QuickBooks would accept both. Of the items of one row held under different
    live leases, the oldest (lowest id) goes ahead and the others wait, then find the row linked and send at most
    an update. One query per chunk.
    """
    writes = [i for i in items if i.object_id and i.operation != QueueItem.Operation.PULL]
    if not writes:
        return {}
    owner = writes[0].lease_owner
    rows = (QueueItem.objects.filter(organization_id=organization_id, status=QueueItem.Status.PROCESSING,
                                     object_id__in={i.object_id for i in writes},
                                     lease_expires_at__gt=timezone.now())
            .exclude(lease_owner=owner).values_list("pk", "entity_type", "object_id", "operation"))
    oldest: dict[tuple[str, str, str], int] = {}
    for pk, entity, object_id, operation in rows:
        key = (entity, "push" if operation in PUSH_OPERATIONS else operation, object_id)
        oldest[key] = min(pk, oldest.get(key, pk))
    outcomes: dict[int, Outcome] = {}
    for item in writes:
        key = (item.entity_type, "push" if item.operation in PUSH_OPERATIONS else item.operation, item.object_id)
        if key in oldest and oldest[key] < item.pk:
            outcomes[item.pk] = Outcome(Result.WAIT, f"item {oldest[key]} of another worker is writing this row right "
                                        "now; waiting for it", "busy", BUSY_WAIT_SECONDS)
    return outcomes


def coalesced_outcome(leader: QueueItem, outcome: Outcome) -> Outcome:
    """The leader's outcome, told as a coalesced one (a completed follower keeps the code "coalesced")."""
    message = f"coalesced with item {leader.pk} of the same row: {outcome.message}".strip().rstrip(":")
    return replace(outcome, message=message, code=outcome.code or "coalesced")
