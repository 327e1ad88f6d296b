"""A liveness check for the container's healthcheck, answered before host validation.

The healthcheck calls http://127.0.0.1:8000/healthz from inside the container, where the Host header is not one of
ALLOWED_HOSTS; it reveals nothing but "ok" and whether the database answers.
"""

from django.db import connection
from django.http import JsonResponse


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except Exception:  # noqa: BLE001 - any database failure means "not healthy"
                return JsonResponse({"status": "database unavailable"}, status=503)
            return JsonResponse({"status": "ok"})
        return self.get_response(request)
