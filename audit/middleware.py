from audit.services import Action, audit_record


class RefusedAccessMiddleware:
    """Records every refused request: any 403 (including a missing CSRF token), and a 404 for a signed-in user on a
    URL that names an object (the scoped views answer 404 for objects outside the user's scope).

    Placed before CsrfViewMiddleware so that it sees the CSRF refusals too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_audit_access_recorded", False):
            return response
        status = response.status_code
        if status in (401, 403) or (status == 404 and self._names_an_object(request)):
            audit_record(request=request, action=Action.ACCESS_DENIED, status=status)
        return response

    @staticmethod
    def _names_an_object(request) -> bool:
        user = getattr(request, "user", None)
        match = getattr(request, "resolver_match", None)
        return bool(user is not None and user.is_authenticated and match is not None and (match.kwargs or match.args))
