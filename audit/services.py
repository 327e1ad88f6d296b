"""Writes to the audit trail. Other apps call audit_record(); nothing else writes AuditEvent rows."""

from __future__ import annotations

import logging

from django.db import transaction

from audit.masking import mask_personal
from audit.models import AuditEvent

logger = logging.getLogger(__name__)

Action = AuditEvent.Action


def _province_id_of(obj) -> int | None:
    """The province an object belongs to, by the paths the domain models use; None when it has none."""
    if obj is None:
        return None
    for path in ("province_id", "unit.province_id", "district.province_id", "campaign.province_id"):
        value = obj
        try:
            for part in path.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        if value is not None:
            return value
    return None


def audit_record(
    *,
    request=None,
    action: str,
    obj=None,
    detail: str = "",
    user=None,
    username: str = "",
    province=None,
    object_type: str = "",
    object_id: str | int = "",
    status: int | None = None,
) -> AuditEvent | None:
    """Add one event to the audit trail and return it.

    `request` gives the user, the client address, method and path (pass None from the command line and give
    `user`). `obj` names the object by model and primary key — never by its SI number or name. The event belongs to
    `province` if given, else to the object's province, else to the acting user's province: that decides which
    admins see it. Never raises: an audit failure is logged (masked) and the caller's work goes on.
    """
    from accounts.network import client_ip
    from districts.scoping import scope_of

    try:
        if user is None and request is not None and getattr(request, "user", None) is not None:
            user = request.user if request.user.is_authenticated else None
        if obj is not None:
            object_type = object_type or obj._meta.label_lower
            object_id = object_id or obj.pk
        province_id = getattr(province, "pk", province) or _province_id_of(obj)
        if province_id is None and user is not None:
            scope = scope_of(user)
            province_id = scope.province_id if scope else None
        event = AuditEvent(
            user=user,
            username=mask_personal(username or (user.get_username() if user is not None else ""))[:150],
            ip=client_ip(request) if request is not None else None,
            action=action,
            object_type=str(object_type)[:100],
            object_id=mask_personal(str(object_id or ""))[:64],
            province_id=province_id,
            method=(request.method or "")[:8] if request is not None else "",
            path=mask_personal(request.path)[:300] if request is not None else "",
            status=status,
            detail=mask_personal(detail)[:2000],
        )
        connection = transaction.get_connection()
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint: a failed insert must not break the caller's transaction
                event.save()
        else:
            # In autocommit the INSERT is its own transaction: a BEGIN … COMMIT around it would only add two round
            # trips to every audited request.
            event.save()
        if request is not None:
            # The audit middleware does not record again what the view already did.
            request._audit_actions = getattr(request, "_audit_actions", set()) | {action}
        return event
    except Exception:
        logger.exception("Could not write the audit event %s", action)
        return None


def audit_record_many(*, action: str, user=None, events: list[tuple]) -> int:
    """Several events of one action by one user from the command line, in one INSERT: `events` holds (obj, province,
    detail) as audit_record takes them. Returns how many were written (0 on a failure, which is logged, never
    raised, as in audit_record)."""
    try:
        username = mask_personal(user.get_username() if user is not None else "")[:150]
        rows = [
            AuditEvent(
                user=user,
                username=username,
                ip=None,
                action=action,
                object_type=obj._meta.label_lower[:100],
                object_id=mask_personal(str(obj.pk))[:64],
                province_id=getattr(province, "pk", province) or _province_id_of(obj),
                method="",
                path="",
                status=None,
                detail=mask_personal(detail)[:2000],
            )
            for obj, province, detail in events
        ]
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint: a failed insert must not break the caller's transaction
                AuditEvent.objects.bulk_create(rows)
        else:
            AuditEvent.objects.bulk_create(rows)
        return len(rows)
    except Exception:
        logger.exception("Could not write the audit events %s", action)
        return 0


def audit_access_denied(*, request, obj=None, object_type: str = "", object_id="", detail: str = "", status=404):
    """For views that refuse an object outside the user's scope: call before raising Http404/PermissionDenied.

    The audit middleware then does not record the same response a second time.
    """
    return audit_record(
        request=request,
        action=Action.ACCESS_DENIED,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        detail=detail,
        status=status,
    )
