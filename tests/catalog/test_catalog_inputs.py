"""Bad input to the catalog is a clear 422, never a 500 nor a silent acceptance (issue 9):
negative, foreign-currency and out-of-range prices, out-of-range stock, out-of-range and
non-finite attributes — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from catalog_helpers import is_problem, money, search

from haina.core.db import transaction


def new_product(client, sku="TIRE-1", title="Tire", amount="99.00", stock=5, **extra):
    r = client.post("/v1/products", json={"sku": sku, "title": title, "price": money(amount),
                                          "stock": stock, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def product(sku="P-1", **fields):
    return {"sku": sku, "title": "Thing", "price": money(), **fields}


# ---------------------------------------------------------------- defect 2: negative prices

@pytest.mark.partition_neutral
@pytest.mark.parametrize("amount", ["-1.00", "-0.01", "-99999"])
def test_a_negative_price_is_refused_everywhere_a_price_is_given(client, amount):
    is_problem(client.post("/v1/products", json=product(price=money(amount))),
               422, "validation-error")
    r = client.post("/v1/products", json={"title": "Family", "variants": [
        {"sku": "F-1", "price": money()}, {"sku": "F-2", "price": money(amount)}]})
    is_problem(r, 422, "validation-error")
    p = new_product(client, sku="OK-1")
    is_problem(client.post(f"/v1/products/{p['id']}/variants",
                           json={"sku": "OK-2", "price": money(amount)}), 422, "validation-error")
    is_problem(client.patch(f"/v1/variants/{p['variants'][0]['id']}",
                            json={"price": money(amount)}), 422, "validation-error")
    assert search(client) == ["OK-1"]
    assert client.get(f"/v1/products/{p['id']}").json()["price"] == money("99.00")


def test_a_zero_price_is_allowed_for_free_samples(client):
    p = new_product(client, sku="SAMPLE-1", amount="0.00")
    assert p["price"] == money("0.00")
    r = client.patch(f"/v1/variants/{p['variants'][0]['id']}", json={"price": money("0")})
    assert r.status_code == 200 and r.json()["price"] == money("0.00")


# ---------------------------------------------------------------- defect 3: currency

def jpy_client(app, sessions):
    """A client for a merchant who sells in JPY."""
    from fastapi.testclient import TestClient

    from haina.platform import service
    with transaction(sessions) as s:
        service.create_tenant(s, "yen-shop", "Yen shop", currency="JPY")
        token = service.create_token(s, "yen-shop", "*").token
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {token}"
    return c


def test_a_price_in_another_currency_than_the_merchants_is_a_422_currency_mismatch(client):
    usd = {"amount": "10.00", "currency": "USD"}
    body = is_problem(client.post("/v1/products", json=product(price=usd)), 422,
                      "currency-mismatch")
    assert "CNY" in body["detail"] and "USD" in body["detail"]
    r = client.post("/v1/products", json={"title": "Family", "variants": [
        {"sku": "F-1", "price": money()}, {"sku": "F-2", "price": usd}]})
    is_problem(r, 422, "currency-mismatch")
    p = new_product(client, sku="CNY-1")
    is_problem(client.post(f"/v1/products/{p['id']}/variants", json={"sku": "USD-2", "price": usd}),
               422, "currency-mismatch")
    is_problem(client.patch(f"/v1/variants/{p['variants'][0]['id']}", json={"price": usd}),
               422, "currency-mismatch")
    assert search(client) == ["CNY-1"]
    assert client.get(f"/v1/products/{p['id']}").json()["price"] == money("99.00")
    # the merchant's own currency, in any letter case, is fine
    r = client.post("/v1/products", json=product("CNY-2", price={"amount": "5", "currency": "cny"}))
    assert r.status_code == 201 and r.json()["price"] == money("5.00")


def test_a_merchant_selling_in_yen_prices_in_yen(app, sessions, client):
    with jpy_client(app, sessions) as yen:
        r = yen.post("/v1/products", json=product("YEN-1", price={"amount": "1500",
                                                                  "currency": "JPY"}))
        assert r.status_code == 201, r.text
        assert r.json()["price"] == {"amount": "1500", "currency": "JPY"}
        is_problem(yen.post("/v1/products", json=product("YEN-2")), 422, "currency-mismatch")


# ---------------------------------------------------------------- defect 4: out-of-range numbers

@pytest.mark.partition_neutral
@pytest.mark.parametrize("fields,limit", [
    ({"price": money("99999999999999999999999.00")}, "1000000000000"),
    ({"price": money("1000000000000.01")}, "1000000000000"),
    ({"price": money("1E+30")}, "1000000000000"),
    ({"stock": 2 ** 63}, "1000000000"),
    ({"stock": 10 ** 20}, "1000000000"),
    ({"stock": 10 ** 9 + 1}, "1000000000"),
    ({"stock": -1}, "0"),
    ({"attributes": {"weight": 10 ** 30}}, "1000000000000000"),
    ({"attributes": {"weight": 1e30}}, "1000000000000000"),
    ({"attributes": {"weight": -(2 ** 63)}}, "1000000000000000"),
])
def test_out_of_range_numbers_are_a_422_naming_the_limit(client, fields, limit):
    r = client.post("/v1/products", json=product(**fields))
    is_problem(r, 422, "validation-error")
    assert limit in r.text
    assert search(client) == []


@pytest.mark.partition_neutral
@pytest.mark.parametrize("where", ["variant", "add_variant", "patch_product", "patch_variant"])
def test_out_of_range_numbers_are_refused_in_every_catalog_input(client, where):
    p = new_product(client, sku="BASE-1")
    vid = p["variants"][0]["id"]
    big = {"attributes": {"weight": 10 ** 30}}
    if where == "variant":
        r = client.post("/v1/products", json={"title": "Family", "variants": [
            {"sku": "F-1", "price": money(), "stock": 10 ** 20}]})
    elif where == "add_variant":
        r = client.post(f"/v1/products/{p['id']}/variants",
                        json={"sku": "F-2", "price": money("99999999999999999999999.00")})
    elif where == "patch_product":
        r = client.patch(f"/v1/products/{p['id']}", json=big)
    else:
        r = client.patch(f"/v1/variants/{vid}", json=big)
    is_problem(r, 422, "validation-error")
    assert search(client) == ["BASE-1"]


def test_numbers_at_the_limits_are_accepted(client):
    p = new_product(client, sku="MAX-1", amount="1000000000000.00", stock=10 ** 9,
                    attributes={"a": 10 ** 15, "b": -(10 ** 15), "c": 1e15, "d": 0.5})
    assert p["price"] == money("1000000000000.00")
    assert p["stock"]["on_hand"] == 10 ** 9
    assert p["attributes"] == {"a": 10 ** 15, "b": -(10 ** 15), "c": 1e15, "d": 0.5}


# ---------------------------------------------------------------- defect 9: non-finite numbers

@pytest.mark.partition_neutral
@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_attribute_numbers_are_refused(client, raw):
    body = ('{"sku": "NF-1", "title": "T", "price": {"amount": "1.00", "currency": "CNY"}, '
            '"attributes": {"x": ' + raw + '}}')
    r = client.post("/v1/products", content=body, headers={"Content-Type": "application/json"})
    is_problem(r, 422, "validation-error")
    p = new_product(client, sku="NF-2")
    r = client.patch(f"/v1/products/{p['id']}", content='{"attributes": {"x": ' + raw + '}}',
                     headers={"Content-Type": "application/json"})
    is_problem(r, 422, "validation-error")
    assert client.get(f"/v1/products/{p['id']}").json()["attributes"] == {}


@pytest.mark.partition_neutral
@pytest.mark.parametrize("text", ["NaN", "inf", "-Infinity", "1e400", "1e30", "-1e16"])
def test_a_number_attribute_given_as_text_must_be_finite_and_in_range(client, text):
    r = client.post("/v1/attributes", json={"code": "width", "name": "Width", "type": "number"})
    assert r.status_code == 201, r.text
    body = is_problem(client.post("/v1/products", json=product(attributes={"width": text})),
                      422, "invalid-attribute")
    assert "width" in body["detail"]
    assert search(client) == []
