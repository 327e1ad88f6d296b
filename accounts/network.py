"""The client's address, as the deployment's proxy reports it and as nobody else can forge it."""

import ipaddress

from django.conf import settings


def _valid_ip(value: str) -> str | None:
    value = (value or "").strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The address of whoever sent `request`.

    settings.CLIENT_IP_HEADERS lists the request.META keys to trust, in order (default: REMOTE_ADDR only, so that a
    client talking to the app directly cannot choose its own address with a header). Behind a proxy, name the header
    the proxy sets (HTTP_X_REAL_IP, or HTTP_X_FORWARDED_FOR: then only its right-most entry, the one the proxy itself
    appended, is believed). A missing or malformed value falls through to the next key, and finally to REMOTE_ADDR.
    django-axes calls this (AXES_CLIENT_IP_CALLABLE) and so does the audit trail, so both see the same address.
    """
    meta = request.META
    for key in getattr(settings, "CLIENT_IP_HEADERS", ["REMOTE_ADDR"]):
        raw = meta.get(key, "")
        if not raw:
            continue
        if key == "HTTP_X_FORWARDED_FOR":
            raw = raw.split(",")[-1]
        ip = _valid_ip(raw)
        if ip:
            return ip
    return _valid_ip(meta.get("REMOTE_ADDR", ""))
