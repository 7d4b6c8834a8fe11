"""The three-way merge: base snapshot (last successful sync) x host now x QBO now, field by field.

For each synced field present in both ``host`` and ``qbo`` (a field missing from either dict is not synced by
this host and is left alone, its base kept):

* unchanged on both sides: nothing to write;
* changed on one side only: applied to the other side, no conflict — except a host change of a QBO-owned
  field, which is overwritten by QBO's value and recorded (rule ``qbo_owns``);
* changed on both sides to the same value: nothing to write, no conflict;
* changed on both sides to different values: a conflict, resolved by the field's policy (below);
* no base for the field (first link): equal values need nothing; different values are treated as changed on
  both sides (``first_link=True`` on the conflict), except that a host-owned field falls back to "newest
  wins" (we cannot tell whether the host changed it).

Policies for a conflict (``rule`` recorded on the :class:`FieldConflict`):

* critical field (``critical_fields``; by default the spec's, which is empty for every entity) — held for a
  person: ``winner=None``, rule ``critical_held``, nothing written on either side, ``new_base`` keeps the old
  base value (or leaves the field out on a first link), so the conflict is raised again until someone resolves
  it;
* a *held* field (``held``: a conflict on it is already open, waiting for a person) — whatever changed, nothing is
  written on either side and the base is kept; while the two sides differ the conflict is raised again (rule
  ``critical_held``, with both sides' current values), so the open conflict always shows what each side holds now;
* :attr:`Policy.QBO_OWNS` — QBO wins, rule ``qbo_owns``;
* :attr:`Policy.HOST_OWNS` — the host wins, rule ``host_owns``;
* :attr:`Policy.NEWEST_WINS` — the side with the later aware timestamp wins, rule ``newest_wins``; on an exact
  tie QBO wins (QBO is the books of record) and the rule says so: ``newest_wins_tie_qbo``.

Normalisation (see :func:`qbo_sync.mapping.base.normalize`): ``None`` equals ``""`` for text, surrounding
whitespace is ignored, emails compare casefolded, money compares to the cent whatever its type. The value
*written* is always the winning side's own value, unnormalised.

``new_base`` is the snapshot to store once the writes have been applied: for each merged field the value both
sides now hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from .base import Direction, DirectionError, EntitySpec, Policy, require_aware, values_equal

__all__ = ["FieldConflict", "MergeResult", "Rule", "Winner", "merge"]

Winner = Literal["host", "qbo"]


class Rule(StrEnum):
    NEWEST_WINS = "newest_wins"
    NEWEST_WINS_TIE_QBO = "newest_wins_tie_qbo"
    QBO_OWNS = "qbo_owns"
    HOST_OWNS = "host_owns"
    CRITICAL_HELD = "critical_held"


@dataclass(frozen=True)
class FieldConflict:
    """One field that both sides (or, for QBO-owned fields, the host) changed, and how it was settled.

    ``winner`` is ``"host"``, ``"qbo"`` or ``None`` when the conflict is held for a person. ``base`` is
    ``None`` on a first link (``first_link=True``).
    """

    field: str
    base: Any
    host: Any
    qbo: Any
    host_updated_at: dt.datetime
    qbo_updated_at: dt.datetime
    rule: str
    winner: Winner | None
    first_link: bool = False

    @property
    def held(self) -> bool:
        return self.winner is None

    @property
    def winning_value(self) -> Any:
        if self.winner == "host":
            return self.host
        if self.winner == "qbo":
            return self.qbo
        return None

    def describe(self) -> str:
        """A one-line, human-readable account for logs and the admin."""
        outcome = "held for review" if self.held else f"{self.winner} wins"
        return (
            f"{self.field}: base={self.base!r} host={self.host!r} ({self.host_updated_at.isoformat()}) "
            f"qbo={self.qbo!r} ({self.qbo_updated_at.isoformat()}) -> {outcome} [{self.rule}]"
        )


@dataclass
class MergeResult:
    """What to write where, what conflicted, and the snapshot to store afterwards."""

    to_host: dict[str, Any] = field(default_factory=dict)
    to_qbo: dict[str, Any] = field(default_factory=dict)
    conflicts: list[FieldConflict] = field(default_factory=list)
    new_base: dict[str, Any] = field(default_factory=dict)

    @property
    def held(self) -> list[FieldConflict]:
        return [c for c in self.conflicts if c.held]

    @property
    def has_changes(self) -> bool:
        return bool(self.to_host or self.to_qbo)


def merge(
    spec: EntitySpec,
    base: Mapping[str, Any] | None,
    host: Mapping[str, Any],
    qbo: Mapping[str, Any],
    *,
    host_updated_at: dt.datetime,
    qbo_updated_at: dt.datetime,
    critical_fields: frozenset[str] | None = None,
    held: Collection[str] = (),
) -> MergeResult:
    """Merge one record's host and QBO canonical values against the last-synced ``base`` (see module
    docstring).

    ``critical_fields``: ``None`` uses ``spec.critical_fields``; a set (even empty) replaces it. ``held``: the
    fields whose conflict is open (see :mod:`qbo_sync.services.held`): never written to either side. Timestamps
    must be timezone-aware (compared as instants, whatever their offsets). Push-only specs are refused (an
    invoice is never merged); pull-only specs merge with every field QBO-owned, so nothing ever goes to QBO.
    """
    if spec.direction is Direction.PUSH:
        raise DirectionError(f"{spec.qbo_name} is push only; it is never merged with QBO's copy")
    require_aware(host_updated_at, "host_updated_at")
    require_aware(qbo_updated_at, "qbo_updated_at")
    critical = spec.critical_fields if critical_fields is None else frozenset(critical_fields)
    result = MergeResult()

    for name in spec.fields:
        has_base = base is not None and name in base
        base_value = base[name] if base is not None and has_base else None
        if name not in host or name not in qbo:
            if has_base:
                result.new_base[name] = base_value
            continue
        h, q = host[name], qbo[name]
        policy = spec.policy_for(name)

        if has_base:
            host_changed = not values_equal(spec, name, h, base_value)
            qbo_changed = not values_equal(spec, name, q, base_value)
        else:
            host_changed = qbo_changed = not values_equal(spec, name, h, q)

        def conflict(
            rule: Rule,
            winner: Winner | None,
            *,
            name: str = name,
            h: Any = h,
            q: Any = q,
            base_value: Any = base_value,
            has_base: bool = has_base,
        ) -> None:
            result.conflicts.append(
                FieldConflict(
                    field=name,
                    base=base_value,
                    host=h,
                    qbo=q,
                    host_updated_at=host_updated_at,
                    qbo_updated_at=qbo_updated_at,
                    rule=rule.value,
                    winner=winner,
                    first_link=not has_base,
                )
            )

        if name in held:
            if not values_equal(spec, name, h, q):
                conflict(Rule.CRITICAL_HELD, None)
            if has_base:
                result.new_base[name] = base_value
            continue
        if not host_changed and not qbo_changed:
            result.new_base[name] = h
            continue
        if qbo_changed and not host_changed:
            result.to_host[name] = q
            result.new_base[name] = q
            continue
        if host_changed and not qbo_changed and policy is not Policy.QBO_OWNS:
            result.to_qbo[name] = h
            result.new_base[name] = h
            continue
        if host_changed and qbo_changed and values_equal(spec, name, h, q):
            result.new_base[name] = h
            continue

        # A conflict: both sides changed to different values, or the host changed a QBO-owned field.
        if name in critical:
            conflict(Rule.CRITICAL_HELD, None)
            if has_base:
                result.new_base[name] = base_value
            continue
        if policy is Policy.QBO_OWNS:
            winner: Winner = "qbo"
            rule = Rule.QBO_OWNS
        elif policy is Policy.HOST_OWNS and has_base:
            winner, rule = "host", Rule.HOST_OWNS
        elif host_updated_at > qbo_updated_at:
            winner, rule = "host", Rule.NEWEST_WINS
        elif qbo_updated_at > host_updated_at:
            winner, rule = "qbo", Rule.NEWEST_WINS
        else:
            winner, rule = "qbo", Rule.NEWEST_WINS_TIE_QBO
        conflict(rule, winner)
        if winner == "host":
            result.to_qbo[name] = h
            result.new_base[name] = h
        else:
            result.to_host[name] = q
            result.new_base[name] = q
    return result
