"""The sync rules applied to a claimed chunk: which items are pushes, voids or pulls, in dependency order.

Order inside a chunk: customers and items first (invoices depend on them), then invoices, then voids, then pulls.
Every item gets an Outcome; one item's problem never fails its neighbours.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from qbo_sync.exceptions import QboApiError, QboConfigurationError, QboSyncError
from qbo_sync.models import QboConnection, QueueItem
from qbo_sync.services import pull, push
from qbo_sync.services.context import SyncContext
from qbo_sync.services.outcomes import Outcome

logger = logging.getLogger(__name__)

ORDER = ["Customer", "Item", "Invoice"]


def process_chunk(organization_id: int, items: Sequence[QueueItem]) -> dict[int, Outcome]:
    try:
        ctx = SyncContext.for_organization(organization_id, job_id=items[0].job_id if items else None)
    except QboConnection.DoesNotExist:
        return {i.pk: Outcome.wait("this organization is not connected to QuickBooks") for i in items}
    except QboApiError as exc:
        return {i.pk: push.outcome_for_error(exc) for i in items}
    except QboSyncError as exc:  # not connected / needs re-authorisation
        return {i.pk: Outcome.wait(str(exc)) for i in items}
    if not ctx.connection.is_usable:
        message = ctx.connection.last_error or f"the QuickBooks connection is {ctx.connection.status}"
        return {i.pk: Outcome.wait(message) for i in items}

    leaders, followers = coalesce(items)
    groups: dict[tuple[str, str], list[QueueItem]] = defaultdict(list)
    for item in leaders:
        groups[(item.entity_type, item.operation)].append(item)
    outcomes: dict[int, Outcome] = {}

    def run(key: tuple[str, str], func, *args) -> None:  # type: ignore[no-untyped-def]
        batch = groups.pop(key, [])
        if not batch:
            return
        try:
            outcomes.update(func(ctx, *args, batch) if args else func(ctx, batch))
        except (QboApiError, QboConfigurationError) as exc:
            outcome = push.outcome_for_error(exc)
            outcomes.update({i.pk: outcome for i in batch if i.pk not in outcomes})

    push_ops = (QueueItem.Operation.PUSH, QueueItem.Operation.CREATE, QueueItem.Operation.UPDATE)
    for entity in ("Customer", "Item"):
        for op in push_ops:
            run((entity, op), push.push_names, entity)
    for op in push_ops:
        run(("Invoice", op), push.push_invoices)
    run(("Invoice", QueueItem.Operation.VOID), push.void_invoices)
    for (entity, op), batch in list(groups.items()):
        if op == QueueItem.Operation.PULL:
            groups.pop((entity, op))
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


def coalesced_outcome(leader: QueueItem, outcome: Outcome) -> Outcome:
    """The leader's outcome, told as a coalesced one (a completed follower keeps the code "coalesced")."""
    message = f"coalesced with item {leader.pk} of the same row: {outcome.message}".strip().rstrip(":")
    return replace(outcome, message=message, code=outcome.code or "coalesced")
