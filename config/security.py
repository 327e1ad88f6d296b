"""Response headers that Django's SecurityMiddleware does not set: a Content-Security-Policy and no-store caching.

The policy allows scripts from this site only (no inline script, no eval): every page's behaviour lives in static/js,
and a chart's figure travels as a JSON data block (<script type="application/json">, which the browser never runs)
that static/js/charts.js draws. Styles allow 'unsafe-inline' because plotly.js inserts <style> elements and style
attributes when it draws (SECURITY.md says so).

Every dynamic response is Cache-Control: no-store: the pages show SI numbers, names and birth dates, and a shared
office computer's browser cache must not keep them. Static files are answered by WhiteNoise before this middleware and
keep their long-lived caching.
"""

from django.conf import settings
from django.utils.cache import add_never_cache_headers

DEFAULT_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}


def content_security_policy() -> str:
    directives = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_CSP)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.csp)
        # Every dynamic answer may carry personal data (or a CSRF token): never stored by a browser or proxy.
        add_never_cache_headers(response)
        return response
