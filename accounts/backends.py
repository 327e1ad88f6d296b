"""The sign-in backend: Django's ModelBackend, reading the request's user together with what every page asks next."""

from django.contrib.auth.backends import ModelBackend

from districts.scoping import access_queryset, access_seed


class ScopedModelBackend(ModelBackend):
    """Authenticates as ModelBackend does; `get_user` (once a request, for the signed-in user) reads the user with
    their role, scope and second-factor device in one query (districts.scoping.access_queryset), so the session
    middleware and the view's scoping ask the database nothing more about them."""

    def get_user(self, user_id):
        user = access_queryset().filter(pk=user_id).first()
        if user is None or not self.user_can_authenticate(user):
            return None
        access_seed(user, user)
        return user
