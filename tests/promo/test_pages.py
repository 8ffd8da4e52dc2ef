"""The promo code pages: list, pool page (upload, generate), the campaign report's codes."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.promo.models import PromoCode, PromoPool
from campaigns.promo.services import promo_codes_generate, promo_pool_create

pytestmark = pytest.mark.django_db


def test_navigation_links_to_the_promo_codes_page(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("dashboard"))
    assert reverse("promo_home") in page.content.decode()


def test_marketer_creates_a_pool_and_generates_codes(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("promo_home"), {"name": "Spring", "key": "SPRING"})
    pool = PromoPool.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "promo_pool", args=[pool.pk]
    )

    response = client.post(
        reverse("promo_pool_generate", args=[pool.pk]), {"count": 50, "prefix": "S-", "length": 6}
    )
    assert response.status_code == 302
    assert PromoCode.objects.filter(pool=pool).count() == 50
    listing = client.get(reverse("promo_home")).content.decode()
    assert "$!promo.SPRING" in listing and ">50<" in listing


def test_upload_with_bad_lines_shows_them_on_the_form(client, marketer):
    client.force_login(marketer)
    pool = promo_pool_create(name="Spring", key="SPRING")
    content = ("OK1\n" + "X" * 101 + "\n").encode()
    response = client.post(
        reverse("promo_pool_upload", args=[pool.pk]),
        {"file": SimpleUploadedFile("c.csv", content)},
    )
    assert response.status_code == 400
    assert "line 2: the code is longer than 100 characters" in response.content.decode()
    assert not PromoCode.objects.exists()


def test_bad_generate_form_is_a_form_error(client, marketer):
    client.force_login(marketer)
    pool = promo_pool_create(name="Spring", key="SPRING")
    response = client.post(
        reverse("promo_pool_generate", args=[pool.pk]), {"count": 0, "length": 8}
    )
    assert response.status_code == 400
    assert not PromoCode.objects.exists()


def test_viewer_sees_pools_but_cannot_change_them(client, viewer):
    client.force_login(viewer)
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_generate(pool=pool, count=3)
    assert client.get(reverse("promo_pool", args=[pool.pk])).status_code == 200
    response = client.post(
        reverse("promo_pool_generate", args=[pool.pk]), {"count": 5, "length": 8}
    )
    assert response.status_code == 403
    assert PromoCode.objects.count() == 3
