import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Sign-ins through the real login form, hundreds of times: the production hasher's cost is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
