import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_officer_signs_in_with_the_keyboard_and_lands_on_their_work(browser_session, staff_user):
    s = browser_session
    page = s.go("/accounts/login/")
    expected_button = "Đăng nhập" if s.language == "vi" else "Sign in"
    assert page.get_by_role("button", name=expected_button).is_visible()
    assert s.axe_violations() == []
    s.screenshot("login")
    s.login("staff1", "correct-horse-battery")
    assert "/accounts/login/" not in page.url
    assert page.get_by_text("Huyện Yên Thử").first.is_visible() or page.get_by_text("Tỉnh Bắc Thử").first.is_visible()
    s.screenshot("home")
    assert s.axe_violations() == []


def test_a_wrong_password_is_refused_with_a_message(browser_session, staff_user):
    s = browser_session
    s.login("staff1", "not-the-password")
    assert "/accounts/login/" in s.page.url
    assert s.page.get_by_role("alert").is_visible()
