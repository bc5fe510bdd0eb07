"""The example's pytest tests (`cd examples/django_site && pytest`, with pytest-django).

The `ferroflag` fixture lays a test's flags over the site's own (FERROFLAG's source) and puts them
back afterwards; `@pytest.mark.flags` does the same from a marker. `manage.py test` does not run this
file (its name does not start with "test"); pytest runs it with tests.py (see pytest.ini).
"""

from __future__ import annotations

import pytest
from django.test import Client
from ferroflag.testing import TestData


def test_a_flag_set_for_one_test(client: Client, ferroflag: TestData) -> None:
    ferroflag.set({"legacy-export": True})
    assert client.get("/export/").status_code == 200


def test_the_flags_a_test_does_not_set_are_the_sites(client: Client, ferroflag: TestData) -> None:
    ferroflag.set({"legacy-export": True})
    assert "Prices in euros" in client.get("/", {"country": "DE"}).content.decode()  # eu-pricing, from the site


def test_and_are_back_in_the_next_test(client: Client) -> None:
    assert client.get("/export/").status_code == 404


@pytest.mark.flags({"beta-search": "vector"})
def test_a_marker(client: Client) -> None:
    assert client.get("/search/").content == b"search engine: vector\n"


@pytest.mark.flag_matrix("new-checkout")
def test_every_state_of_a_flag(client: Client, ferroflag_state: dict[str, object]) -> None:
    body = client.get("/checkout/").content.decode()
    state = ferroflag_state["new-checkout"]
    assert ("old checkout" in body) is (state is False)
