"""The example's tests: `python examples/django_site/manage.py test django_site`.

`override_flag` sets a flag for a whole `TestCase`, one test, or a `with` block, and puts it back.
"""

from __future__ import annotations

from django.test import TestCase
from ferroflag.django.testutils import override_flag


class HomeTests(TestCase):
    def test_flags_in_the_template(self) -> None:
        page = self.client.get("/", {"user": "bob", "plan": "enterprise", "country": "DE"}).content.decode()
        assert "variant v2" in page  # bob's plan matches the new-checkout rule
        assert "Prices in euros" in page
        assert 'class="theme-' in page
        assert 'class="theme-light"' not in page  # dark-mode is on for everyone, with a variant

    @override_flag("dark-mode", active=False)
    def test_theme_off(self) -> None:
        assert 'class="theme-light"' in self.client.get("/").content.decode()

    def test_export_is_switched_off(self) -> None:
        assert self.client.get("/export/").status_code == 404
        with override_flag("legacy-export"):
            assert self.client.get("/export/").status_code == 200

    def test_exposures_reach_the_sink_and_metrics_count_evaluations(self) -> None:
        import time

        for user in ("ana", "bob", "ana"):
            self.client.get("/", {"user": user})
        deadline = time.monotonic() + 10
        while len(self.client.get("/exposures").json()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = {(e["flag"], e["subject"]) for e in self.client.get("/exposures").json()}
        assert {("dark-mode", "ana"), ("dark-mode", "bob")} <= seen
        text = self.client.get("/metrics").content.decode()
        assert 'ferroflag_evaluations_total{flag="dark-mode"' in text
        assert "ferroflag_exposures_total" in text

    def test_health(self) -> None:
        assert self.client.get("/healthz").json() == {"flags": "inline"}


@override_flag("new-checkout", active=True, variant="v2")
class CheckoutTests(TestCase):
    def test_new_checkout(self) -> None:
        assert self.client.get("/checkout/").content == b"new checkout, variant v2\n"

    def test_old_checkout(self) -> None:
        with override_flag("new-checkout", active=False):
            assert self.client.get("/checkout/").content == b"old checkout\n"


class SearchTests(TestCase):
    async def test_async_view_is_gated(self) -> None:
        assert (await self.async_client.get("/search/")).status_code == 404
        with override_flag("beta-search", variant="vector"):
            response = await self.async_client.get("/search/")
        assert response.content == b"search engine: vector\n"
