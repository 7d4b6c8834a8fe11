"""Shapes of the API: strict input serializers (unknown fields refused) and documented output serializers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qbo_sync import registry
from qbo_sync.models import AuditEntry, Conflict, QboConnection, SyncJob
from qbo_sync.organizations import organization_ref
from qbo_sync.services.conflicts import KEEP_CHOICES
from qbo_sync.services.plans import PUSH_ACTIONS
from qbo_sync.services.progress import SLOW_REASONS

#: Entity names as the API takes them (case-insensitive; a plural is accepted too).
ENTITY_CHOICES = [name.lower() for name in registry.names()]
#: The entity column of jobs: a registered entity, or blank (a job of several entities).
ENTITY_TYPE_CHOICES = [*((name, name) for name in registry.names()), ("", "")]
MAX_IDS = 10_000


def normalize_entity(value: Any) -> str | None:
    """``"invoices"``/``"Invoice"`` -> ``"Invoice"``; ``None`` when it names no entity."""
    return registry.lookup(value)


def _one_of(names: tuple[str, ...]) -> str:
    """``("Customer", "Item", "Invoice")`` -> ``"customer, item or invoice"``."""
    words = [name.lower() for name in names]
    return " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


class EntityField(serializers.ChoiceField):
    """An entity name, case-insensitive; its value is the canonical name (``Invoice``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ENTITY_CHOICES, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        entity = normalize_entity(data)
        if entity is None:
            self.fail("invalid_choice", input=data)
        return entity


def inline_choice(name: str, choices: list[Any], **kwargs: Any) -> serializers.ChoiceField:
    """A choice field documented by a pattern instead of an enum component: several response fields are named
    ``state`` with different choice sets, and drf-spectacular could only name their enum components by a hash (a
    warning, which ``spectacular --fail-on-warn`` refuses) unless the host set ENUM_NAME_OVERRIDES."""
    values = [c[0] if isinstance(c, (tuple, list)) else c for c in choices]
    schema: dict[str, Any] = {"type": "string", "pattern": "^(" + "|".join(values) + ")$",
                              "description": "One of: " + ", ".join(values) + "."}
    cls = extend_schema_field(schema)(type(name, (serializers.ChoiceField,), {}))
    return cls(choices=choices, **kwargs)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (``{"field": ["Unknown field."]}``) instead of ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


# --- input ---------------------------------------------------------------------------------------------------------

class JobFilterSerializer(StrictSerializer):
    state = serializers.ChoiceField(choices=SyncJob.State.choices, required=False)
    entity = EntityField(required=False)
    kind = serializers.ChoiceField(choices=SyncJob.Kind.choices, required=False)


class ConflictFilterSerializer(StrictSerializer):
    state = serializers.ChoiceField(choices=Conflict.State.choices, required=False)
    entity = EntityField(required=False)


class AuditFilterSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=AuditEntry.Action.choices, required=False)
    surface = serializers.ChoiceField(choices=AuditEntry.Surface.choices, required=False)
    entity = EntityField(required=False)
    object_id = serializers.CharField(required=False, max_length=64)
    field = serializers.CharField(required=False, max_length=64)


class ProgressFilterSerializer(StrictSerializer):
    entity = EntityField(required=False)


class SyncRequestSerializer(StrictSerializer):
    entity = EntityField(help_text=f"What to sync: {_one_of(registry.pushable())} (push); "
                                   f"{_one_of(registry.pullable())} (pull).")
    direction = serializers.ChoiceField(choices=[("push", "host to QuickBooks"), ("pull", "QuickBooks to host")],
                                        default="push")
    ids = serializers.ListField(
        child=serializers.CharField(max_length=64, allow_blank=False), required=False, allow_empty=False,
        max_length=MAX_IDS, help_text=f"Host ids to push (at most {MAX_IDS}); or send `all: true`.")
    all = serializers.BooleanField(required=False, default=False, help_text="Push every row of the entity.")
    full = serializers.BooleanField(required=False, default=False,
                                    help_text="Pull: everything, not only what changed since the last pull.")
    dry_run = serializers.BooleanField(required=False, default=False,
                                       help_text="Start nothing: answer 200 with the plan (a push: what each row "
                                                 "would get and why; a pull: the window it would read).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        errors: dict[str, list[str]] = {}
        if attrs["direction"] == "push":
            if "ids" in attrs and attrs.get("all"):
                errors["ids"] = ["Send either ids or all: true, not both."]
            elif "ids" not in attrs and not attrs.get("all"):
                errors["ids"] = ["Send the ids to push, or all: true."]
            if "full" in given:
                errors["full"] = ["Only a pull can be full."]
        else:
            if "ids" in attrs:
                errors["ids"] = ["A pull fetches what changed in QuickBooks; it takes no ids."]
            if "all" in given and not attrs.get("all"):
                errors["all"] = ["A pull always covers the whole entity."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PlanRowSerializer(serializers.Serializer):
    id = serializers.CharField(source="object_id")
    label = serializers.CharField()
    action = serializers.ChoiceField(choices=[(a, a) for a in PUSH_ACTIONS])
    reason = serializers.CharField(allow_blank=True)
    fields = serializers.ListField(child=serializers.CharField(), help_text="What an update sends.")
    held = serializers.ListField(child=serializers.CharField(), help_text="Fields waiting for a person: not sent.")
    code = serializers.CharField(allow_blank=True, help_text="Why a row is refused: tenancy, merged or invalid.")


class SyncPlanSerializer(serializers.Serializer):
    """A dry run: the plan the push or pull itself would follow. Nothing was queued, sent or read."""

    dry_run = serializers.BooleanField()
    direction = serializers.ChoiceField(choices=[("push", "push"), ("pull", "pull")])
    entity = serializers.CharField()
    organization = serializers.CharField()
    summary = serializers.DictField(child=serializers.IntegerField(), required=False,
                                    help_text="Push: rows per action.")
    rows = PlanRowSerializer(many=True, required=False, help_text="Push: one per row, in the order given.")
    mode = serializers.ChoiceField(choices=[("full", "full"), ("incremental", "incremental")], required=False,
                                   help_text="Pull: everything, or what changed since `since`.")
    since = serializers.DateTimeField(allow_null=True, required=False,
                                      help_text="Pull: where the read starts (the cursor, a little before).")
    reads = serializers.ListField(child=serializers.CharField(), required=False,
                                  help_text="Pull: the QuickBooks entities read.")


class CancelRequestSerializer(StrictSerializer):
    """No fields: the body is empty (or ``{}``)."""


class ResolveRequestSerializer(StrictSerializer):
    keep = serializers.ChoiceField(choices=list(KEEP_CHOICES),
                                   help_text="host: keep the app's value; qbo: keep QuickBooks'; value: `value`.")
    value = serializers.JSONField(required=False, help_text="The edited value (a string, number or boolean), with "
                                                            "keep=value only.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["keep"] == "value":
            if "value" not in attrs or attrs["value"] is None:
                raise serializers.ValidationError({"value": ["An edited value is required with keep=value."]})
            if isinstance(attrs["value"], (dict, list)):
                raise serializers.ValidationError({"value": ["The value must be a string, a number or a boolean."]})
        elif "value" in attrs:
            raise serializers.ValidationError({"value": ["A value is only taken with keep=value."]})
        return attrs


# --- output --------------------------------------------------------------------------------------------------------

class _Counts(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    dead = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    percent = serializers.FloatField(help_text="Items finished (in any way) out of total, 0-100.")


class JobSerializer(_Counts):
    """A job in a list (counts from one annotated query for the whole page)."""

    id = serializers.IntegerField()
    url = serializers.URLField(help_text="This job's progress in the API.")
    organization = serializers.CharField(help_text="The organization (its ORGANIZATION_LOOKUP_FIELD value).")
    kind = serializers.ChoiceField(choices=SyncJob.Kind.choices)
    entity_type = serializers.ChoiceField(choices=ENTITY_TYPE_CHOICES, allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=SyncJob.State.choices)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class FailureSerializer(serializers.Serializer):
    object_id = serializers.CharField(allow_blank=True)
    qbo_id = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=[("failed", "failed"), ("dead", "dead")])
    error = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)


class JobProgressSerializer(JobSerializer):
    """One job's progress, for polling (ETag: an unchanged job answers 304)."""

    progress_page = serializers.CharField(allow_null=True, help_text="The live progress page, when the host mounts "
                                                                     "qbo_sync's pages.")
    done = serializers.IntegerField()
    remaining = serializers.IntegerField()
    rate_per_minute = serializers.FloatField(help_text="Items finished per minute over the last 5 minutes (the whole "
                                                       "run, once finished).")
    throttle_ceiling_per_minute = serializers.FloatField(help_text="The most QuickBooks' limits allow per minute.")
    eta_seconds = serializers.FloatField(allow_null=True, help_text="Seconds left at the current rate; null when "
                                                                    "nothing has finished yet to measure.")
    slow_reason = serializers.ChoiceField(choices=[(reason, reason) for reason in SLOW_REASONS],
                                          allow_null=True, help_text="Why it is slow, when it is. `no worker "
                                          "running`: work has been due for minutes and nothing moved; start the "
                                          "workers (`manage.py qcluster`).")
    paused = serializers.BooleanField(help_text="An operator paused the organization's sync: work waits, nothing is "
                                                "sent or pulled until it is resumed.")
    pause_reason = serializers.CharField(allow_blank=True, help_text="Why, as the operator said (empty unless "
                                                                     "paused).")
    last_completed_at = serializers.DateTimeField(allow_null=True)
    failures = FailureSerializer(many=True, help_text="The latest failed or dead items (at most 20).")


class JobStartedSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    url = serializers.URLField(help_text="Poll this for progress (also in the Location header).")
    progress_page = serializers.CharField(allow_null=True)
    kind = serializers.ChoiceField(choices=SyncJob.Kind.choices)
    entity_type = serializers.ChoiceField(choices=ENTITY_TYPE_CHOICES, allow_blank=True)
    state = serializers.ChoiceField(choices=SyncJob.State.choices)
    total = serializers.IntegerField()


class CancelResultSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    state = serializers.ChoiceField(choices=SyncJob.State.choices)
    cancelled_items = serializers.IntegerField(help_text="Pending items cancelled (items in a worker finish).")


class QueueCountsSerializer(serializers.Serializer):
    organization = serializers.CharField()
    entity = serializers.CharField(allow_null=True)
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    dead = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    due = serializers.IntegerField(help_text="Pending items due now.")
    oldest_due_seconds = serializers.FloatField(allow_null=True, help_text="Age of the oldest due item.")


class ConflictSerializer(serializers.ModelSerializer):
    organization = serializers.SerializerMethodField()
    object_id = serializers.CharField(source="mapping.object_id")
    qbo_id = serializers.CharField(source="mapping.qbo_id", allow_null=True)
    base_value = serializers.JSONField(allow_null=True)
    host_value = serializers.JSONField(allow_null=True)
    qbo_value = serializers.JSONField(allow_null=True)
    resolved_value = serializers.JSONField(allow_null=True)
    resolved_by = serializers.SerializerMethodField()
    state = inline_choice("ConflictStateField", Conflict.State.choices)
    winner = serializers.ChoiceField(choices=Conflict.Winner.choices, allow_blank=True,
                                     help_text="Who won; blank while open or when an edited value was kept.")

    class Meta:
        model = Conflict
        fields = ["id", "organization", "entity_type", "object_id", "qbo_id", "field", "base_value", "host_value",
                  "qbo_value", "host_updated_at", "qbo_updated_at", "rule", "winner", "state", "resolved_value",
                  "resolved_by", "resolved_at", "created_at"]
        read_only_fields = fields

    def get_organization(self, obj: Conflict) -> str:
        return org_label(obj.organization)

    def get_resolved_by(self, obj: Conflict) -> str | None:
        return obj.resolved_by.get_username() if obj.resolved_by_id else None


class AuditEntrySerializer(serializers.ModelSerializer):
    """One change: who (``actor``, ``user``), how (``surface``), from where (``address``), what and when."""

    organization = serializers.SerializerMethodField()
    user = serializers.SerializerMethodField()
    old_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)
    detail = serializers.JSONField()

    class Meta:
        model = AuditEntry
        fields = ["id", "created_at", "organization", "action", "surface", "actor", "user", "address", "job",
                  "entity_type", "object_id", "field", "old_value", "new_value", "summary", "detail"]
        read_only_fields = fields

    def get_organization(self, obj: AuditEntry) -> str | None:
        return org_label(obj.organization) if obj.organization_id else None

    def get_user(self, obj: AuditEntry) -> str | None:
        return obj.user.get_username() if obj.user_id else None


class ConnectionSerializer(serializers.Serializer):
    """The connection's status. Tokens are never part of it."""

    organization = serializers.CharField()
    status = serializers.ChoiceField(choices=QboConnection.Status.choices)
    connected = serializers.BooleanField()
    realm_id = serializers.CharField(allow_blank=True)
    company_name = serializers.CharField(allow_blank=True)
    environment = serializers.CharField(allow_blank=True)
    connected_at = serializers.DateTimeField(allow_null=True)
    access_token_expires_at = serializers.DateTimeField(allow_null=True)
    refresh_token_expires_at = serializers.DateTimeField(allow_null=True)
    last_refreshed_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    paused = serializers.BooleanField(help_text="An operator paused the sync: work queues, nothing is sent or pulled.")
    paused_at = serializers.DateTimeField(allow_null=True)
    pause_reason = serializers.CharField(allow_blank=True)


class PauseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, help_text="Why the sync is paused (shown on every progress page).")


class RecordStatusSerializer(serializers.Serializer):
    entity = serializers.CharField()
    id = serializers.CharField()
    state = inline_choice("RecordStateField", ["synced", "pending", "failed", "conflict", "not_synced"])
    qbo_id = serializers.CharField(allow_null=True)
    qbo_url = serializers.CharField(allow_blank=True)
    sync_token = serializers.CharField(allow_null=True, allow_blank=True)
    last_pushed_at = serializers.DateTimeField(allow_null=True)
    last_pulled_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True, allow_null=True)
    open_conflicts = serializers.IntegerField()


def org_label(org: Any) -> str:
    return organization_ref(org)
