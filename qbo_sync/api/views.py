"""The sync's REST API: thin callers of ``qbo_sync.services``; every query scoped to the caller's organizations.

See :mod:`qbo_sync.api.permissions` for how the organization is chosen.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db import connection as db_connection
from django.db.models import QuerySet
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qbo_sync import registry
from qbo_sync.adapters import get_adapter
from qbo_sync.api import serializers as s
from qbo_sync.api.permissions import ORG_HEADER, ORG_QUERY_PARAM, ORG_RULE, IsSyncUser, OrganizationScope
from qbo_sync.exceptions import QboConfigurationError
from qbo_sync.models import AuditEntry, Conflict, QboConnection, QueueItem, SyncJob
from qbo_sync.permissions import Action, Actor, require
from qbo_sync.services import jobs as job_service
from qbo_sync.services import operations
from qbo_sync.services.jobs import QboInputError
from qbo_sync.services.progress import (
    ConnectionState,
    ItemFigures,
    annotate_counts,
    connection_state,
    counts_of,
    item_figures,
    job_progress,
    queue_counts,
    with_connection,
)
from qbo_sync.services.status import record_status

Status = QueueItem.Status
#: Unfinished jobs' ETags also change every this many seconds, so the rate and ETA shown keep following the clock
#: even when no item moved (a stalled job's rate falls).
ETAG_BUCKET_SECONDS = 15
MAX_FAILURES_SHOWN = 20
#: Entities with a host row (the record status badge).
RECORD_ENTITIES = [name.lower() for name in registry.with_adapters()]

ORG_PARAMETERS = [
    OpenApiParameter(ORG_QUERY_PARAM, OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, description=ORG_RULE),
    OpenApiParameter(ORG_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False, description=ORG_RULE),
]
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid input: `{field: [message, ...]}` "
                                                               "(`detail` for malformed JSON).")
NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="No such object in the caller's organizations (an "
                                                            "organization the caller cannot see included).")
NO_AUTH = OpenApiResponse(OpenApiTypes.OBJECT, description="Not authenticated, a member of no organization, or "
                                                          "without the permission this action needs (see "
                                                          "the permissions page of the docs).")


#: The largest offset (or limit) a page request may name: far beyond any table, within every database's integers.
MAX_OFFSET = 10**12


class QboPagination(LimitOffsetPagination):
    """limit/offset; ``limit`` defaults to 50 and is capped at 200; a non-numeric or negative value is a 400."""

    default_limit = 50
    max_limit = 200

    def _param(self, request: Request, name: str, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise exceptions.ValidationError({name: ["A whole number is required."]}) from None
        if value < minimum:
            raise exceptions.ValidationError({name: [f"Must be at least {minimum}."]})
        if value > MAX_OFFSET:
            raise exceptions.ValidationError({name: [f"Must be at most {MAX_OFFSET}."]})
        return value

    def get_limit(self, request: Request) -> int:
        value = self._param(request, self.limit_query_param, 1)
        return self.default_limit if value is None else min(value, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._param(request, self.offset_query_param, 0) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": self.limit_query_param, "required": False, "in": "query",
             "description": f"Rows per page (default {self.default_limit}; larger values are capped at "
                            f"{self.max_limit}).", "schema": {"type": "integer", "minimum": 1}},
            {"name": self.offset_query_param, "required": False, "in": "query",
             "description": "The index of the first row.", "schema": {"type": "integer", "minimum": 0}},
        ]


def _error_field(exc: QboInputError) -> str:
    return {"organization": ORG_QUERY_PARAM, "": "non_field_errors"}.get(exc.field, exc.field)


def input_error(exc: QboInputError) -> exceptions.ValidationError:
    return exceptions.ValidationError({_error_field(exc): list(getattr(exc, "messages", None) or [str(exc)])})


def host_pk(model: Any, raw: Any) -> Any:
    """``raw`` as ``model``'s primary key, or ``None`` when it cannot be one (not a number, out of the column's range:
    PostgreSQL would refuse the query, and an ``IN`` lookup has no overflow guard)."""
    field = model._meta.pk
    try:
        value = field.to_python(raw)
    except (DjangoValidationError, ValueError, TypeError, OverflowError):
        return None
    if isinstance(value, int):
        low, high = db_connection.ops.integer_field_range(field.get_internal_type())
        if (low is not None and value < low) or (high is not None and value > high):
            return None
    return value


def _job_url(request: Request, pk: int) -> str:
    return request.build_absolute_uri(reverse("qbo_sync_api:job-detail", args=[pk]))


def progress_page_url(request: Request, pk: int) -> str | None:
    try:
        return request.build_absolute_uri(reverse("qbo_sync:job-progress", args=[pk]))
    except NoReverseMatch:
        return None


def _validated_query(serializer_class: type, request: Request) -> dict[str, Any]:
    names = set(serializer_class().fields)
    data = {k: v for k, v in request.query_params.items() if k in names}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SafeJSONParser(JSONParser):
    """JSON bodies; one nested too deeply for the decoder is a 400 like any other malformed body, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class SyncApiMixin:
    permission_classes = [IsSyncUser]
    parser_classes = [SafeJSONParser]

    def scope(self) -> OrganizationScope:
        return OrganizationScope.of(self.request)  # type: ignore[attr-defined]

    def actor(self) -> Actor:
        return Actor.from_request(self.request, "api")  # type: ignore[attr-defined]


@extend_schema_view(
    list=extend_schema(
        summary="List sync jobs",
        parameters=[*ORG_PARAMETERS,
                    OpenApiParameter("state", OpenApiTypes.STR, enum=SyncJob.State.values),
                    OpenApiParameter("entity", OpenApiTypes.STR, enum=s.ENTITY_CHOICES,
                                     description="Case-insensitive."),
                    OpenApiParameter("kind", OpenApiTypes.STR, enum=SyncJob.Kind.values)],
        responses={200: s.JobSerializer(many=True), 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND},
    ),
    retrieve=extend_schema(
        summary="One job's progress (poll it; send If-None-Match)",
        description="Counts per status, percent, rate per minute, ETA and why it is slow. The response has an ETag; "
                    "send it back as `If-None-Match` and an unchanged job answers 304 without a body (two queries). "
                    f"An unfinished job's ETag also turns every {ETAG_BUCKET_SECONDS} s so the rate and ETA follow "
                    "the clock.",
        parameters=[*ORG_PARAMETERS, ID_PARAMETER,
                    OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                                     description="The ETag of the last response.")],
        responses={200: s.JobProgressSerializer, 304: OpenApiResponse(description="Not modified since the ETag."),
                   400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND},
    ),
    cancel=extend_schema(
        summary="Cancel a job",
        description="Its pending items are cancelled; items already in a worker's chunk finish. A finished job "
                    "answers 409.",
        parameters=[*ORG_PARAMETERS, ID_PARAMETER],
        request=s.CancelRequestSerializer,
        responses={200: s.CancelResultSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND,
                   409: OpenApiResponse(OpenApiTypes.OBJECT, description="The job has already finished.")},
    ),
)
class JobViewSet(SyncApiMixin, viewsets.GenericViewSet):
    pagination_class = QboPagination
    lookup_value_regex = r"[0-9]+"
    queryset = SyncJob.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = s.JobSerializer

    def get_queryset(self) -> QuerySet:
        return self.scope().filter(SyncJob.objects.select_related("organization"))

    def _job(self, queryset: QuerySet | None = None) -> SyncJob:
        pk = self.kwargs["pk"]
        job = (queryset if queryset is not None else self.get_queryset()).filter(pk=pk).first()
        if job is None:
            raise Http404("No such job.")
        return job

    def list(self, request: Request) -> Response:
        filters = _validated_query(s.JobFilterSerializer, request)
        qs = self.get_queryset()
        if "state" in filters:
            qs = qs.filter(state=filters["state"])
        if "entity" in filters:
            qs = qs.filter(entity_type=filters["entity"])
        if "kind" in filters:
            qs = qs.filter(kind=filters["kind"])
        page = self.paginate_queryset(annotate_counts(qs).order_by("-created_at", "-pk"))
        return self.get_paginated_response([self._row(job) for job in page])

    def _row(self, job: SyncJob) -> dict[str, Any]:
        return {
            "id": job.pk, "url": _job_url(self.request, job.pk), "organization": s.org_label(job.organization),
            "kind": job.kind, "entity_type": job.entity_type, "description": job.description, "state": job.state,
            **counts_of(job).as_dict(),
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        }

    def retrieve(self, request: Request, pk: str) -> Response:
        # The polled call, kept light: the job with its connection's state in one query (the caller's organizations
        # as a subquery), the view permission in the job's organization only, then one query over the job's items
        # that serves both the ETag and the figures (docs/performance.md, "Progress endpoint").
        job = self.scope().get(with_connection(SyncJob.objects.select_related("organization")), pk=pk)
        if job is None:
            raise Http404("No such job.")
        now = timezone.now()
        figures = item_figures(job, now)
        connection = connection_state(job)
        etag = self._etag(job, figures, connection)
        wanted = request.headers.get("If-None-Match")
        if wanted and (wanted.strip() == "*" or _weak(etag) in {_weak(t) for t in parse_etags(wanted)}):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=_cache_headers(etag))
        progress = job_progress(job, now, figures=figures, connection=connection)
        failures: list[dict[str, Any]] = []
        if progress.failures:
            failures = [
                {"object_id": i.object_id, "qbo_id": i.qbo_id, "status": i.status, "error": i.last_error,
                 "error_code": i.error_code}
                for i in QueueItem.objects.filter(job_id=job.pk, status__in=[Status.FAILED, Status.DEAD])
                .order_by("-updated_at", "-pk").only("object_id", "qbo_id", "status", "last_error", "error_code")
                [:MAX_FAILURES_SHOWN]
            ]
        body = {
            **{k: v for k, v in progress.as_dict().items() if k != "job"},
            "id": job.pk, "url": _job_url(request, job.pk), "progress_page": progress_page_url(request, job.pk),
            "organization": s.org_label(job.organization), "description": job.description, "failures": failures,
        }
        return Response(s.JobProgressSerializer(body).data, headers=_cache_headers(etag))

    @staticmethod
    def _etag(job: SyncJob, figures: ItemFigures, connection: ConnectionState) -> str:
        bucket = "" if job.is_finished else str(int(time.time() // ETAG_BUCKET_SECONDS))
        parts = [job.pk, job.state, job.updated_at, figures.fingerprint, connection.updated_at, bucket]
        digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]
        return f'W/"{digest}"'

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = self._job()
        require(self.actor(), Action.OPERATE, job.organization_id)
        s.CancelRequestSerializer(data=request.data if request.data else {}).is_valid(raise_exception=True)
        if job.is_finished:
            return Response({"detail": f"Job {job.pk} has already finished ({job.state})."},
                            status=status.HTTP_409_CONFLICT)
        count = operations.cancel_job(self.actor(), job)
        job.refresh_from_db(fields=["state"])
        return Response(s.CancelResultSerializer({"job": job.pk, "state": job.state, "cancelled_items": count}).data)


def _weak(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def _cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": "private, no-cache"}


class QueueProgressView(SyncApiMixin, APIView):
    @extend_schema(
        summary="Queue counts of the caller's organization",
        parameters=[*ORG_PARAMETERS, OpenApiParameter("entity", OpenApiTypes.STR, enum=s.ENTITY_CHOICES,
                                                      description="Only this entity (case-insensitive).")],
        responses={200: s.QueueCountsSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        filters = _validated_query(s.ProgressFilterSerializer, request)
        org = self.scope().single()
        entity = filters.get("entity")
        counts = queue_counts(org.pk, entity)
        return Response(s.QueueCountsSerializer({"organization": s.org_label(org), "entity": entity, **counts}).data)


class SyncView(SyncApiMixin, APIView):
    @extend_schema(
        summary="Start a sync job",
        description="Push rows of an entity to QuickBooks (`ids` or `all: true`), or pull an entity from QuickBooks "
                    "(`full` for everything). Answers 202 with the job's URL in the body and the Location header. "
                    "A pull while one of the same entity is still running joins it. Nothing is written on a 400. "
                    "With `dry_run: true` nothing is started: the answer (200) is the plan the push or pull would "
                    "follow, the same one the admin's preview and `qbo_sync push --dry-run` show.",
        parameters=ORG_PARAMETERS,
        request=s.SyncRequestSerializer,
        responses={202: s.JobStartedSerializer, 200: s.SyncPlanSerializer, 400: FIELD_ERRORS, 403: NO_AUTH,
                   404: NOT_FOUND},
        examples=[OpenApiExample("Push two invoices", value={"entity": "invoice", "ids": ["12", "13"]},
                                 request_only=True),
                  OpenApiExample("Pull all customers", value={"entity": "customer", "direction": "pull",
                                                              "full": True}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        org = self.scope().single()
        require(self.actor(), Action.START_SYNC, org)
        serializer = s.SyncRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("ids"):
            model = get_adapter(data["entity"]).model if data["entity"] in job_service.PUSHABLE else None
            bad = [i for i in data["ids"] if model is not None and host_pk(model, i) is None]
            if bad:
                shown = ", ".join(bad[:10]) + (" …" if len(bad) > 10 else "")
                raise exceptions.ValidationError({"ids": [f"No {data['entity'].lower()} with id {shown} in this "
                                                          "organization."]})
        if data["dry_run"]:
            return Response(s.SyncPlanSerializer(self.plan(org, data)).data)
        try:
            if data["direction"] == "push":
                job = operations.start_push(self.actor(), org, data["entity"],
                                            None if data.get("all") else data["ids"])
            else:
                job = operations.start_pull(self.actor(), org, data["entity"], full=data["full"])
        except QboInputError as exc:
            raise input_error(exc) from exc
        url = _job_url(request, job.pk)
        body = {"job": job.pk, "url": url, "progress_page": progress_page_url(request, job.pk), "kind": job.kind,
                "entity_type": job.entity_type, "state": job.state, "total": job.total}
        return Response(s.JobStartedSerializer(body).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    @staticmethod
    def plan(org: Any, data: dict[str, Any]) -> dict[str, Any]:
        """The dry run's body: the plans the job would follow (a pull's window is not counted in QuickBooks)."""
        body: dict[str, Any] = {"dry_run": True, "direction": data["direction"], "organization": s.org_label(org)}
        try:
            if data["direction"] == "push":
                rows = job_service.preview_push(org.pk, data["entity"], None if data.get("all") else data["ids"])
                body.update(entity=data["entity"], rows=rows, summary=dict(Counter(r.action for r in rows)))
            else:
                plan, _ = job_service.preview_pull(org.pk, data["entity"], full=data["full"], count=False)
                body.update(entity=plan.entity, mode=plan.mode, since=plan.read_from, reads=list(plan.reads))
        except QboInputError as exc:
            raise input_error(exc) from exc
        return body


@extend_schema_view(
    list=extend_schema(
        summary="List conflicts",
        parameters=[*ORG_PARAMETERS,
                    OpenApiParameter("state", OpenApiTypes.STR, enum=Conflict.State.values),
                    OpenApiParameter("entity", OpenApiTypes.STR, enum=s.ENTITY_CHOICES,
                                     description="Case-insensitive.")],
        responses={200: s.ConflictSerializer(many=True), 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND},
    ),
    retrieve=extend_schema(summary="One conflict", parameters=[*ORG_PARAMETERS, ID_PARAMETER],
                           responses={200: s.ConflictSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND}),
    resolve=extend_schema(
        summary="Resolve a conflict",
        description="Keep the app's (host) value, QuickBooks' value, or an edited `value` (with `keep: value`); "
                    "both sides get it. An edited value is checked through the host field first: one it refuses "
                    "answers 400 with the field's messages under `value`, and nothing is written. An already resolved "
                    "conflict answers 409.",
        parameters=[*ORG_PARAMETERS, ID_PARAMETER],
        request=s.ResolveRequestSerializer,
        responses={200: s.ConflictSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND,
                   409: OpenApiResponse(OpenApiTypes.OBJECT, description="Already resolved, or its row is gone.")},
    ),
)
class ConflictViewSet(SyncApiMixin, viewsets.GenericViewSet):
    pagination_class = QboPagination
    lookup_value_regex = r"[0-9]+"
    queryset = Conflict.objects.none()
    serializer_class = s.ConflictSerializer

    def get_queryset(self) -> QuerySet:
        return self.scope().filter(Conflict.objects.select_related("organization", "mapping", "resolved_by"))

    def _conflict(self) -> Conflict:
        conflict = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if conflict is None:
            raise Http404("No such conflict.")
        return conflict

    def list(self, request: Request) -> Response:
        filters = _validated_query(s.ConflictFilterSerializer, request)
        qs = self.get_queryset()
        if "state" in filters:
            qs = qs.filter(state=filters["state"])
        if "entity" in filters:
            qs = qs.filter(entity_type=filters["entity"])
        page = self.paginate_queryset(qs.order_by("-created_at", "-pk"))
        return self.get_paginated_response(s.ConflictSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ConflictSerializer(self._conflict()).data)

    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        conflict = self._conflict()
        require(self.actor(), Action.RESOLVE, conflict.organization_id)
        serializer = s.ResolveRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            conflict = operations.resolve_conflict(self.actor(), conflict, data["keep"], value=data.get("value"))
        except QboInputError as exc:
            if exc.field == "conflict":
                return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
            raise input_error(exc) from exc
        except (DjangoValidationError, ValueError, TypeError, DataError) as exc:
            # The edited value does not fit the host field (the service's transaction rolled back).
            messages = getattr(exc, "messages", None) or [str(exc)]
            raise exceptions.ValidationError({"value": [str(m) for m in messages]}) from exc
        conflict = self.get_queryset().get(pk=conflict.pk)
        return Response(s.ConflictSerializer(conflict).data)


@extend_schema_view(
    list=extend_schema(
        summary="The audit log: who changed what, through which surface, from which address",
        description="Connects, disconnects, jobs started and cancelled, retries, resolved conflicts (with the "
                    "record, field, old and new value) and repairs, newest first. Read-only.",
        parameters=[*ORG_PARAMETERS,
                    OpenApiParameter("action", OpenApiTypes.STR, enum=AuditEntry.Action.values),
                    OpenApiParameter("surface", OpenApiTypes.STR, enum=AuditEntry.Surface.values),
                    OpenApiParameter("entity", OpenApiTypes.STR, enum=s.ENTITY_CHOICES,
                                     description="Case-insensitive."),
                    OpenApiParameter("object_id", OpenApiTypes.STR, description="The host row's id."),
                    OpenApiParameter("field", OpenApiTypes.STR, description="A resolved conflict's field.")],
        responses={200: s.AuditEntrySerializer(many=True), 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND},
    ),
)
class AuditViewSet(SyncApiMixin, viewsets.GenericViewSet):
    pagination_class = QboPagination
    queryset = AuditEntry.objects.none()
    serializer_class = s.AuditEntrySerializer

    def get_queryset(self) -> QuerySet:
        return self.scope().filter(AuditEntry.objects.select_related("organization", "user"))

    def list(self, request: Request) -> Response:
        filters = _validated_query(s.AuditFilterSerializer, request)
        qs = self.get_queryset()
        for name, column in (("action", "action"), ("surface", "surface"), ("entity", "entity_type"),
                             ("object_id", "object_id"), ("field", "field")):
            if name in filters:
                qs = qs.filter(**{column: filters[name]})
        page = self.paginate_queryset(qs.order_by("-created_at", "-pk"))
        return self.get_paginated_response(s.AuditEntrySerializer(page, many=True).data)


class ConnectionView(SyncApiMixin, APIView):
    @extend_schema(summary="The organization's QuickBooks connection (status only, never tokens)",
                   parameters=ORG_PARAMETERS,
                   responses={200: s.ConnectionSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND})
    def get(self, request: Request) -> Response:
        return Response(connection_data(self.scope().single()))


def connection_data(org: Any) -> dict[str, Any]:
    conn = QboConnection.objects.filter(organization_id=org.pk).first()
    data: dict[str, Any] = {"organization": s.org_label(org), "status": QboConnection.Status.DISCONNECTED,
                            "connected": False, "realm_id": "", "company_name": "", "environment": "",
                            "connected_at": None, "access_token_expires_at": None,
                            "refresh_token_expires_at": None, "last_refreshed_at": None, "last_error": "",
                            "paused": False, "paused_at": None, "pause_reason": ""}
    if conn is not None:
        data.update({name: getattr(conn, name) for name in (
            "status", "realm_id", "company_name", "environment", "connected_at", "access_token_expires_at",
            "refresh_token_expires_at", "last_refreshed_at", "last_error", "paused_at", "pause_reason")})
        data["connected"] = conn.status == QboConnection.Status.CONNECTED
        data["paused"] = conn.paused_at is not None
    return s.ConnectionSerializer(data).data


class ConnectionPauseView(SyncApiMixin, APIView):
    @extend_schema(summary="Pause the organization's sync",
                   description="Work keeps queueing (saves, webhooks, nightly pulls); nothing is sent to or pulled "
                               "from QuickBooks until it is resumed. Pausing again updates the reason.",
                   parameters=ORG_PARAMETERS, request=s.PauseRequestSerializer,
                   responses={200: s.ConnectionSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND})
    def post(self, request: Request) -> Response:
        org = self.scope().single()
        require(self.actor(), Action.OPERATE, org)
        serializer = s.PauseRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            operations.pause(self.actor(), org, serializer.validated_data["reason"])
        except QboInputError as exc:
            raise input_error(exc) from exc
        return Response(connection_data(org))


class ConnectionResumeView(SyncApiMixin, APIView):
    @extend_schema(summary="Resume the organization's sync", description="The work that waited is due at once.",
                   parameters=ORG_PARAMETERS, request=None,
                   responses={200: s.ConnectionSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND})
    def post(self, request: Request) -> Response:
        org = self.scope().single()
        require(self.actor(), Action.OPERATE, org)
        try:
            operations.resume(self.actor(), org)
        except QboInputError as exc:
            raise input_error(exc) from exc
        return Response(connection_data(org))


class RecordStatusView(SyncApiMixin, APIView):
    @extend_schema(
        summary="One host record's sync state (the badge next to an invoice)",
        parameters=[*ORG_PARAMETERS,
                    OpenApiParameter("entity", OpenApiTypes.STR, OpenApiParameter.PATH, enum=RECORD_ENTITIES,
                                     description="Case-insensitive."),
                    OpenApiParameter("object_id", OpenApiTypes.STR, OpenApiParameter.PATH,
                                     description="The host row's id.")],
        responses={200: s.RecordStatusSerializer, 400: FIELD_ERRORS, 403: NO_AUTH, 404: NOT_FOUND},
    )
    def get(self, request: Request, entity: str, object_id: str) -> Response:
        name = s.normalize_entity(entity)
        if name is None or name.lower() not in RECORD_ENTITIES:
            raise Http404("No such entity.")
        try:
            adapter = get_adapter(name)
        except QboConfigurationError:
            raise Http404("No such entity.") from None
        org = self.scope().single()
        pk = host_pk(adapter.model, object_id)
        if pk is None or not adapter.get_queryset(org.pk).filter(pk=pk).exists():
            raise Http404(f"No {name.lower()} {object_id} in this organization.")
        return Response(s.RecordStatusSerializer(record_status(org.pk, name, str(pk))).data)
