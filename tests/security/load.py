"""A minimal HTTP client for the load tests: one per thread, its own cookies, redirects not followed."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from http.cookies import SimpleCookie

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class HttpSession:
    """Like a browser tab: keeps the cookies the server sets and sends them back; one request at a time."""

    def __init__(self, base_url: str, cookies: dict[str, str] | None = None, language: str = "en"):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies = dict(cookies or {})
        self.language = language

    def request(self, method: str, path: str, data: dict | None = None, timeout: float = 60):
        """Returns (status, headers, body text). A new connection per request, as the test server closes them."""
        headers = {"Accept-Language": self.language, "Host": f"{self.host}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://{self.host}:{self.port}{path}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for value in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(value).items():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return response.status, response.headers, text
        finally:
            connection.close()

    def csrf_token(self, path: str) -> str:
        """GETs a form page and returns the token in it (the csrftoken cookie arrives with the page)."""
        status, _headers, text = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path} answered {status}")
        match = CSRF_INPUT.search(text)
        if match is None:
            raise AssertionError(f"no CSRF token in {path}")
        return match.group(1)
