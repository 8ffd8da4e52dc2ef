"""Herald's own promo code API (/api/herald/promo-pools, /api/herald/campaigns/<id>/promo-codes)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.promo.models import PromoCode, PromoPool
from campaigns.promo.services import promo_codes_add, promo_pool_create
from templates.services import template_create

pytestmark = pytest.mark.django_db
POOLS = "/api/herald/promo-pools"


def make_pool(api, key, name="Spring"):
    response = api.post(POOLS, key=key, body={"name": name, "key": "SPRING"})
    assert response.status_code == 201, response.content
    return response.json()


def test_pool_created_listed_changed_and_deleted(api, full_key):
    pool = make_pool(api, full_key)
    assert pool["key"] == "SPRING" and pool["free"] == 0 and pool["assigned"] == 0

    api.post(f"{POOLS}/{pool['id']}/codes", key=full_key, body={"codes": ["A", "B"]})
    listing = api.get(POOLS, key=full_key).json()
    assert [(p["key"], p["free"], p["assigned"]) for p in listing] == [("SPRING", 2, 0)]

    changed = api.call(
        "PATCH", f"{POOLS}/{pool['id']}", key=full_key, body={"description": "Spring sale"}
    )
    assert changed.status_code == 200 and changed.json()["description"] == "Spring sale"
    assert api.delete(f"{POOLS}/{pool['id']}", key=full_key).status_code == 204
    assert not PromoPool.objects.exists() and not PromoCode.objects.exists()


def test_csv_upload_reports_duplicates_with_lines_and_keeps_the_rest(api, full_key):
    pool = make_pool(api, full_key)
    promo_codes_add(pool=PromoPool.objects.get(pk=pool["id"]), lines=[(1, "OLD1")])
    content = "\ufeffcode,note\nNEW1,x\nNEW2,y\nNEW1,z\n\nOLD1,w\nNEW3,v\n".encode()
    upload = SimpleUploadedFile("codes.csv", content, content_type="text/csv")

    response = api.client.post(
        f"{POOLS}/{pool['id']}/codes",
        {"file": upload},
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "added": 3,
        "duplicates": [
            {"line": 4, "code": "NEW1", "reason": "repeats line 2"},
            {"line": 6, "code": "OLD1", "reason": "already in the pool"},
        ],
    }
    assert sorted(PromoCode.objects.values_list("code", flat=True)) == [
        "NEW1",
        "NEW2",
        "NEW3",
        "OLD1",
    ]


def test_json_list_of_codes_is_accepted(api, full_key):
    pool = make_pool(api, full_key)
    response = api.post(f"{POOLS}/{pool['id']}/codes", key=full_key, body=["X1", "X2", "X1"])
    assert response.status_code == 200
    assert response.json()["added"] == 2
    assert response.json()["duplicates"] == [{"line": 3, "code": "X1", "reason": "repeats line 1"}]


def test_generate_makes_unique_codes_with_the_pattern(api, full_key):
    pool = make_pool(api, full_key)
    response = api.post(
        f"{POOLS}/{pool['id']}/generate",
        key=full_key,
        body={"count": 2000, "prefix": "SPR-", "length": 6},
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"added": 2000}
    codes = list(PromoCode.objects.values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 2000
    assert all(c.startswith("SPR-") and len(c) == 10 for c in codes)
    assert not set("".join(c[4:] for c in codes)) & set("0O1IL")


def test_codes_listed_by_assigned(api, full_key):
    pool = make_pool(api, full_key)
    api.post(f"{POOLS}/{pool['id']}/codes", key=full_key, body={"codes": ["A", "B", "C"]})
    PromoCode.objects.filter(code="B").update(assigned_at="2026-01-01T00:00:00Z")

    free = api.get(f"{POOLS}/{pool['id']}/codes?assigned=false", key=full_key).json()
    given = api.get(f"{POOLS}/{pool['id']}/codes?assigned=true", key=full_key).json()

    assert [c["code"] for c in free["results"]] == ["A", "C"]
    assert [c["code"] for c in given["results"]] == ["B"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "key": "X"}, "name"),
        ({"name": "Spring", "key": "9lives"}, "key"),
        ({"name": "Spring", "key": "has space"}, "key"),
    ],
)
def test_bad_pool_is_400_naming_the_field(api, full_key, body, field):
    response = api.post(POOLS, key=full_key, body=body)
    assert response.status_code == 400
    assert field in str(response.json())


def test_a_second_pool_with_the_same_key_is_400(api, full_key):
    make_pool(api, full_key)
    response = api.post(POOLS, key=full_key, body={"name": "Other", "key": "spring"})
    assert response.status_code == 400
    assert response.json()["field"] == "key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 1_000_001}, "count"),
        ({"count": 10, "length": 2}, "length"),
        ({"count": 100_000, "length": 4}, "length"),
        ({"count": 10, "prefix": "A B"}, "prefix"),
        ({}, "count"),
    ],
)
def test_bad_generate_is_400_naming_the_field(api, full_key, body, field):
    pool = make_pool(api, full_key)
    response = api.post(f"{POOLS}/{pool['id']}/generate", key=full_key, body=body)
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert not PromoCode.objects.exists()


def upload(api, key, pool_id, content: bytes):
    return api.client.post(
        f"{POOLS}/{pool_id}/codes",
        {"file": SimpleUploadedFile("codes.csv", content, content_type="text/csv")},
        headers={"Authorization": api.basic(key.secret)},
    )


def test_empty_file_is_400_naming_the_file(api, full_key):
    pool = make_pool(api, full_key)
    response = upload(api, full_key, pool["id"], b"   \n")
    assert response.status_code == 400
    assert response.json()["field"] == "file"


def test_bad_lines_are_400_listing_each_line_and_nothing_is_stored(api, full_key):
    pool = make_pool(api, full_key)
    content = ("GOOD1\n" + "X" * 101 + "\nBAD\u0007CODE\nGOOD2\n").encode()
    response = upload(api, full_key, pool["id"], content)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "file"
    assert body["lines"] == [
        {"line": 2, "problem": "the code is longer than 100 characters"},
        {"line": 3, "problem": "the code contains a control character"},
    ]
    assert not PromoCode.objects.exists()


def test_a_file_that_is_not_utf8_is_400(api, full_key):
    pool = make_pool(api, full_key)
    response = upload(api, full_key, pool["id"], "CODE\u00e9\n".encode("latin-1"))
    assert response.status_code == 400
    assert response.json()["field"] == "file"


@pytest.mark.parametrize("body", [{"codes": []}, {"codes": [""]}, {"codes": "ABC"}, {}])
def test_bad_code_lists_are_400_naming_codes(api, full_key, body):
    pool = make_pool(api, full_key)
    response = api.post(f"{POOLS}/{pool['id']}/codes", key=full_key, body=body)
    assert response.status_code == 400
    assert "codes" in str(response.json())


def test_publishing_a_template_that_names_an_unknown_pool_is_400(api, full_key):
    promo_pool_create(name="Spring", key="SPRING")
    template = template_create(
        name="Codes",
        subject="Hi",
        from_email="news@shop.example",
        html="<p>$!promo.SPRING and $!promo.SUMMER</p>",
    )
    response = api.post(f"/api/herald/templates/{template.pk}/publish", key=full_key)
    assert response.status_code == 400
    assert response.json() == {
        "html": ["$promo.SUMMER names a promo code pool that does not exist."]
    }
    preview = api.post(f"/api/herald/templates/{template.pk}/preview", key=full_key, body={})
    assert preview.status_code == 400 and "SUMMER" in str(preview.json())


def test_preview_shows_a_sample_code(api, full_key):
    promo_pool_create(name="Spring", key="SPRING")
    template = template_create(
        name="Codes", subject="Hi", from_email="news@shop.example", html="<p>$!promo.SPRING</p>"
    )
    preview = api.post(f"/api/herald/templates/{template.pk}/preview", key=full_key, body={})
    assert preview.status_code == 200
    assert "SPRING-SAMPLE" in preview.json()["html"]


def test_limited_key_cannot_reach_pools(api, limited_key):
    assert api.get(POOLS, key=limited_key).status_code == 403
