from districts.scoping import role_of, scope_of


def user_scope(request):
    """Puts the signed-in user's role and scope into every template (navigation, the unit in view)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"user_role": role_of(user), "user_scope": scope_of(user)}
