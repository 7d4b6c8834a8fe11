"""The sync rules applied to a claimed chunk: which items are pushes, voids or pulls, in dependency order.

Order inside a chunk: customers and items first (invoices depend on them), then invoices, then voids, then pulls.
Every item gets an Outcome; one item's problem never fails its neighbours.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

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

    groups: dict[tuple[str, str], list[QueueItem]] = defaultdict(list)
    for item in items:
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
    for item in items:
        outcomes.setdefault(item.pk, Outcome.retry("no outcome was recorded; will try again"))
    return outcomes
