"""Records what the audit trail must hold without each view having to remember it."""

from audit.services import Action, audit_record

# Successful requests to these views are recorded: (methods, action, the URL kwarg naming the object, object type).
# A view that calls audit_record() itself for the same action is not recorded twice.
AUDITED_VIEWS = {
    "participants:enrollment_detail": ({"GET"}, Action.RECORD_VIEWED, "pk", "participants.enrollment"),
    "participants:participant_lookup": ({"POST"}, Action.RECORD_VIEWED, None, "participants.participant"),
    "participants:enrollment_upload_confirm": ({"POST"}, Action.IMPORTED, "pk", "participants.enrollmentupload"),
    "campaigns:target_import_preview": ({"POST"}, Action.IMPORTED, "pk", "campaigns.targetimport"),
}


def _upload_outcome(pk) -> str:
    from participants.models import EnrollmentUpload

    upload = EnrollmentUpload.objects.filter(pk=pk).values("status", "created_count").first()
    return f"status={upload['status']}, created={upload['created_count']}" if upload else ""


def _target_import_outcome(pk) -> str:
    from campaigns.models import TargetImport

    pending = TargetImport.objects.filter(pk=pk).values("applied_at").first()
    return ("applied" if pending["applied_at"] else "not applied") if pending else ""


# What an import attempt came to, read after the view has answered (an attempt that saved nothing is recorded too).
OUTCOMES = {
    "participants:enrollment_upload_confirm": _upload_outcome,
    "campaigns:target_import_preview": _target_import_outcome,
}
EXPORT_PARAMETER = "_export"  # django-tables2's export switch, used by every table export


class AuditMiddleware:
    """Adds to the audit trail:

    - every refused request: any 401/403 (a missing CSRF token too), and a 404 for a signed-in user on a URL that
      names an object (the scoped views answer 404 for objects outside the user's scope);
    - every successful view of a personal record, export (?_export=...) and confirmed import (AUDITED_VIEWS).

    Placed before CsrfViewMiddleware so that it sees the CSRF refusals too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        recorded = getattr(request, "_audit_actions", set())
        status = response.status_code
        match = getattr(request, "resolver_match", None)
        if status in (401, 403) or (status == 404 and self._names_an_object(request, match)):
            if Action.ACCESS_DENIED not in recorded:
                audit_record(request=request, action=Action.ACCESS_DENIED, status=status)
            return response
        if status >= 400 or match is None:
            return response
        audited = AUDITED_VIEWS.get(match.view_name)
        if match.view_name == "participants:participant_lookup" and not request.POST.get("si_number", "").strip():
            audited = None  # the empty lookup form shows nobody
        if audited and request.method in audited[0] and audited[1] not in recorded:
            _methods, action, kwarg, object_type = audited
            object_id = match.kwargs.get(kwarg, "") if kwarg else ""
            outcome = OUTCOMES.get(match.view_name)
            audit_record(
                request=request,
                action=action,
                object_type=object_type,
                object_id=object_id,
                status=status,
                detail=outcome(object_id) if outcome and object_id else "",
            )
        if request.method == "GET" and request.GET.get(EXPORT_PARAMETER) and Action.EXPORTED not in recorded:
            audit_record(
                request=request,
                action=Action.EXPORTED,
                object_type=match.view_name,
                detail=f"format={request.GET.get(EXPORT_PARAMETER)[:10]}",
                status=status,
            )
        return response

    @staticmethod
    def _names_an_object(request, match) -> bool:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and match is not None and (match.kwargs or match.args))
