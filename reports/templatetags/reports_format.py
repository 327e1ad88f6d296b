from django import template

from reports import formatting

register = template.Library()


@register.filter
def num(value):
    return formatting.fmt_int(value)


@register.filter
def dec(value, places=2):
    return formatting.fmt_dec(value, int(places))


@register.filter
def pct(value):
    return formatting.fmt_pct(value)


@register.filter
def signed(value):
    return formatting.fmt_signed(value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
