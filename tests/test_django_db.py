"""The database source (`FERROFLAG = {"DATABASE": alias}`): store, admin, history, propagation, outages.

Runs on SQLite (the in-memory default of tests/django_settings.py) and on a real PostgreSQL server that
`pg_cluster` starts on loopback for this module (`.ci/run` installs it); nothing here is mocked.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

django = pytest.importorskip("django")

import django_settings  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        ROOT_URLCONF="test_django",
        **{name: getattr(django_settings, name) for name in dir(django_settings) if name.isupper()},
    )
django.setup()

import ferroflag.django as ff_django  # noqa: E402
import pg_cluster  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from ferroflag import EvalContext, FlagEvaluator  # noqa: E402
from ferroflag.django import store  # noqa: E402
from ferroflag.django.database import DatabaseSource, DatabaseStatus  # noqa: E402
from ferroflag.django.models import Flag, FlagChange, Revision, Segment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


def flag_view(request, key):
    """What a visitor of the site sees: the flag's answer for them."""
    return HttpResponse("on" if request.flags.is_enabled(key) else "off")


urlpatterns = [path("admin/", admin.site.urls), path("flag/<str:key>/", flag_view)]
# A poll thread reading the shared in-memory SQLite while a test writes it can make either side fail at
# once with "database table is locked" (shared-cache SQLite has table locks and no busy wait), so the
# site's source polls once an hour here: the saving process applies each change on commit anyway.
ADMIN_SITE = {"ROOT_URLCONF": __name__, "FERROFLAG": {"DATABASE": "default", "INTERVAL": 3600.0}}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server, registered as the database alias `pg` (migrated)."""
    if pg_cluster.bin_dir() is None:
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a failure, never a skip
            pytest.fail("PostgreSQL is not installed, and CI must run these tests (see .ci/run)")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql, as .ci/run does)")
    cluster = pg_cluster.start()  # a server that is installed but does not start fails the tests, loudly
    entry = cluster.settings()
    # Django's defaults filled in (configure_settings wants a 'default' alias), then registered in
    # connections.settings, which is the same dict as settings.DATABASES.
    connections.configure_settings({"default": settings.DATABASES["default"], "pg": entry})
    connections.settings["pg"] = entry
    try:
        call_command("migrate", database="pg", run_syncdb=True, verbosity=0)
        yield cluster
    finally:
        ff_django._reset()
        connections["pg"].close()
        del connections.settings["pg"]
        cluster.remove()


@pytest.fixture(scope="module", autouse=True)
def _database():
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture(params=["sqlite", "postgresql"])
def alias(request):
    """Each test that takes it runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres")
        return "pg"
    return "default"


def _empty(using: str) -> None:
    for model in (FlagChange, Flag, Segment, Revision):
        model.objects.using(using).all().delete()


@pytest.fixture(autouse=True)
def _fresh_state():
    ff_django._reset()
    _empty("default")
    if "pg" in connections.settings:  # the server is up (from an earlier test of this module)
        _empty("pg")
    yield
    ff_django._reset()


@pytest.fixture
def admin_user():
    user, created = get_user_model().objects.get_or_create(
        username="root", defaults={"email": "root@staff.test", "is_staff": True, "is_superuser": True}
    )
    if created:
        user.set_password("pw")
        user.save()
    return user


def wait_for(predicate, timeout=WAIT, step=0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


ANON = EvalContext("")
BETA = {
    "key": "beta",
    "enabled": True,
    "percentage": 25,
    "rules": [{"name": "staff", "conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@s.t"]}]}],
    "variants": {"a": 1, "b": 1},
    "values": {"a": {"rows": 10}, "b": {"rows": 20}},
}


# --- the store: validation and history ----------------------------------------------------------


def test_a_saved_flag_reads_back_as_written_with_its_history(alias, admin_user):
    store.save_flag(BETA, user=admin_user, using=alias, comment="test")
    assert store.export_document(alias)["flags"] == [BETA]
    assert store.revision(alias) == 1
    [change] = FlagChange.objects.using(alias).all()
    assert (change.action, change.kind, change.key, change.username, change.comment) == (
        "create",
        "flag",
        "beta",
        "root",
        "test",
    )
    assert change.before is None
    assert change.after == BETA
    assert change.revision == 1

    store.set_flag_fields("beta", enabled=False, using=alias)
    latest = FlagChange.objects.using(alias).first()
    assert (latest.action, latest.username, latest.before, latest.after) == (
        "update",
        "",
        BETA,
        {**BETA, "enabled": False},
    )
    assert store.revision(alias) == 2
    store.set_flag_fields("beta", enabled=False, using=alias)  # no change: no revision, no history
    assert store.revision(alias) == 2
    assert FlagChange.objects.using(alias).count() == 2


def test_the_engine_refuses_an_invalid_flag_with_its_own_message_and_nothing_is_saved(alias):
    store.save_flag(BETA, using=alias)
    bad = {**BETA, "rules": [{"priority": 1.5}]}
    with pytest.raises(store.InvalidChange) as caught:
        store.save_flag(bad, using=alias)
    err = caught.value
    assert err.path == "rules[0].priority"  # relative to the flag, for the form
    assert err.error is not None
    assert err.message == err.error.message  # the engine's message, word for word
    assert err.error.path == "flags[0].rules[0].priority"
    assert "integer" in err.message
    assert store.export_document(alias)["flags"] == [BETA]
    assert store.revision(alias) == 1
    assert FlagChange.objects.using(alias).count() == 1

    with pytest.raises(store.InvalidChange, match="already exists"):
        store.save_flag({**BETA, "key": "other"}, using=alias) and store.save_flag(
            {**BETA, "key": "beta"}, original_key="other", using=alias
        )
    with pytest.raises(store.InvalidChange, match="key"):
        store.save_flag({"enabled": True}, using=alias)
    with pytest.raises(store.InvalidChange, match="at most 200 characters"):
        store.save_flag({"key": "k" * 201, "enabled": True}, using=alias)
    with pytest.raises(store.InvalidChange, match="at most 200") as caught:
        store.import_document({"flags": [BETA, {"key": "k" * 201, "enabled": True}]}, using=alias)
    assert caught.value.path == "flags[1].key"
    with pytest.raises(store.InvalidChange, match="no flag"):
        store.set_flag_fields("nope", enabled=True, using=alias)


def test_segments_and_a_renamed_flag(alias):
    store.save_segment(
        {
            "key": "staff",
            "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@s"]}]}],
        },
        using=alias,
    )
    store.save_flag(
        {"key": "f", "enabled": True, "rules": [{"conditions": [{"operator": "in_segment", "values": ["staff"]}]}]},
        using=alias,
    )
    store.save_flag({"key": "g", "enabled": True, "rules": []}, original_key="f", using=alias)
    doc = store.export_document(alias)
    assert [f["key"] for f in doc["flags"]] == ["g"]
    assert [s["key"] for s in doc["segments"]] == ["staff"]
    with pytest.raises(store.InvalidChange) as caught:
        store.save_segment({"key": "staff", "rules": [{"conditions": [{"operator": "nope?"}]}]}, using=alias)
    assert caught.value.path.startswith("rules[0]")
    store.delete_segment("staff", using=alias)
    store.delete_flag("g", using=alias)
    assert store.export_document(alias) == {"format": 2, "flags": []}
    actions = list(FlagChange.objects.using(alias).order_by("id").values_list("kind", "action", "key"))
    assert actions == [
        ("segment", "create", "staff"),
        ("flag", "create", "f"),
        ("flag", "update", "g"),
        ("segment", "delete", "staff"),
        ("flag", "delete", "g"),
    ]


def test_import_then_export_is_lossless(alias):
    document = json.loads((ROOT / "examples" / "flags.json").read_text())
    document["metadata"] = {"flagSetId": "web", "version": 3}
    counts = store.import_document(document, using=alias)
    assert counts["created"] == len(document["flags"]) + len(document.get("segments", []))
    exported = store.export_document(alias)
    assert store.import_document(exported, using=alias) == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": counts["created"],
    }
    assert store.export_document(alias) == exported
    # The engine reads the export as it reads the original file.
    assert store.validate_document(exported).document() == store.validate_document(document).document()


# --- the source: in the saving process at once, in others within INTERVAL -------------------------


def test_a_change_applies_at_once_in_the_saving_process(alias):
    store.save_flag({"key": "live", "enabled": False}, using=alias)
    # A long interval: only the reload on commit can explain an answer that changes at once.
    with override_settings(FERROFLAG={"DATABASE": alias, "INTERVAL": 60.0}):
        evaluator = ff_django.get_evaluator()
        assert evaluator.is_enabled("live", ANON) is False
        status = ff_django.sync_status()
        assert isinstance(status, DatabaseStatus)
        assert (status.ready, status.running, status.source, status.revision) == (True, True, "database", 1)

        store.set_flag_fields("live", enabled=True, using=alias)
        assert evaluator.is_enabled("live", ANON) is True

        with transaction.atomic(using=alias):
            store.set_flag_fields("live", enabled=False, using=alias)
            assert evaluator.is_enabled("live", ANON) is True  # not before the commit
        assert evaluator.is_enabled("live", ANON) is False

        with contextlib.suppress(RuntimeError), transaction.atomic(using=alias):
            store.set_flag_fields("live", enabled=True, using=alias)
            raise RuntimeError("rolled back")
        assert evaluator.is_enabled("live", ANON) is False
        assert store.revision(alias) == 3


def test_the_site_answers_from_the_database(alias):
    with override_settings(FERROFLAG={"DATABASE": alias, "INTERVAL": 3600.0}):
        assert Client().get("/context/").json()["on"] is False
        store.save_flag({"key": "on-flag", "enabled": True}, using=alias)
        assert Client().get("/context/").json()["on"] is True


def _spawn_worker(cluster, interval: float) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FERROFLAG_TEST_DB": json.dumps(cluster.settings()),
        "FERROFLAG_TEST_INTERVAL": str(interval),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "django_db_worker.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    if not readable:
        raise AssertionError(f"the worker said nothing for {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the worker exited: {proc.wait(5)}, {proc.stderr.read()}")
    return line.strip()


def measure_propagation(cluster, *, interval: float, changes: int) -> list[float]:
    """Seconds from a commit in this process to the new flags in another process, `changes` times."""
    store.save_flag({"key": "prop", "enabled": False}, using="pg")
    proc = _spawn_worker(cluster, interval)
    try:
        assert _read_line(proc, 30).startswith("ready ")
        delays = []
        for i in range(changes):
            store.set_flag_fields("prop", enabled=i % 2 == 0, using="pg")
            committed = time.monotonic()
            revision = store.revision("pg")
            _, _version, seen_revision, at = _read_line(proc, interval + WAIT).split()
            assert int(seen_revision) == revision
            delays.append(float(at) - committed)
            time.sleep(0.05 + (i % 3) * interval / 3)  # land changes at different points of the poll cycle
        return delays
    finally:
        proc.stdin.close()  # the worker exits when its stdin closes
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.slow
def test_another_process_sees_a_change_within_the_interval(postgres):
    interval = 0.25
    delays = measure_propagation(postgres, interval=interval, changes=8)
    print(f"propagation to another process, INTERVAL={interval}: median {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms")  # fmt: skip
    assert max(delays) < interval + 0.5, delays


def test_an_outage_keeps_the_last_good_flags_and_recovers(postgres):
    store.save_flag({"key": "kept", "enabled": True}, using="pg")
    source = DatabaseSource(ff_django.get_evaluator(start=False), using="pg", interval=0.05)
    evaluator = source.evaluator
    try:
        assert source.start(wait=WAIT)
        assert evaluator.is_enabled("kept", ANON)
        postgres.stop("fast")
        try:
            assert wait_for(lambda: source.status().consecutive_failures >= 2)
            status = source.status()
            assert (status.ready, status.stale, status.running) == (True, True, True)
            assert status.last_error
            assert pg_cluster.PASSWORD not in json.dumps(status.to_dict())
            assert evaluator.is_enabled("kept", ANON)  # the last good flags
        finally:
            postgres.start()
        connections["pg"].close()  # this thread's connection died with the server
        store.set_flag_fields("kept", enabled=False, using="pg")
        assert wait_for(lambda: not evaluator.is_enabled("kept", ANON))
        assert wait_for(lambda: not source.status().stale)
        assert source.status().last_error is None
    finally:
        assert source.stop()
    assert not source.status().running


def test_a_document_the_engine_rejects_is_not_applied(alias):
    store.save_flag({"key": "ok", "enabled": True}, using=alias)
    source = DatabaseSource(ff_django.get_evaluator(start=False), using=alias, interval=60)
    assert source.refresh()
    # Written around the store (raw SQL, a bad migration): the engine still has the last word.
    Flag.objects.using(alias).filter(key="ok").update(definition={"rules": [{"priority": "high"}]})
    Revision.objects.using(alias).update(number=99)
    assert not source.refresh()
    status = source.status()
    assert status.stale
    assert status.revision == 1
    assert "revision 99 was not applied" in status.last_error
    assert "rules[0].priority" in status.last_error
    assert source.evaluator.is_enabled("ok", ANON)


def test_missing_tables_show_in_the_status():
    source = DatabaseSource(ff_django.get_evaluator(start=False), using="default", interval=60)
    with connections["default"].schema_editor() as editor:
        editor.delete_model(Revision)
    try:
        assert not source.refresh()
        assert not source.status().ready
        assert "ferroflag_revision" in source.status().last_error
    finally:
        with connections["default"].schema_editor() as editor:
            editor.create_model(Revision)


def test_database_setting_checks():
    def ids(raw):
        with override_settings(FERROFLAG=raw):
            return [m.id for m in checks.run_checks(tags=["ferroflag"])]

    assert ids({"DATABASE": "default", "INTERVAL": 0.5, "START_WAIT": 1}) == []
    assert ids({"DATABASE": "nope"}) == ["ferroflag.E013"]
    assert ids({"DATABASE": "default", "HEADERS": {"a": "b"}}) == ["ferroflag.E009"]
    assert ids({"DATABASE": "default", "FLAGS": []}) == ["ferroflag.E003"]


# --- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_site():
    """The test site with the admin, serving from the database, its first load done before the test runs
    (a poll thread's first read racing a test's write fails at once on shared in-memory SQLite)."""
    with override_settings(**ADMIN_SITE):
        ff_django.start()
        yield


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def _flag_form(**fields):
    data = {"key": "beta", "enabled": "on", "percentage": "25", "definition": "{}"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_admin_adds_and_changes_a_flag_and_the_site_follows(admin_site, admin_client):
    assert Client().get("/flag/beta/").content == b"off"
    definition = json.dumps({"rules": BETA["rules"], "variants": BETA["variants"], "values": BETA["values"]})
    response = admin_client.post("/admin/ferroflag/flag/add/", _flag_form(definition=definition))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert store.export_document()["flags"] == [BETA]
    assert Client().get("/flag/beta/").content in (b"on", b"off")  # 25 %: anonymous users share one bucket

    flag = Flag.objects.get(key="beta")
    response = admin_client.post(f"/admin/ferroflag/flag/{flag.pk}/change/", _flag_form(percentage="100"))
    assert response.status_code == 302
    assert Client().get("/flag/beta/").content == b"on"  # applied at once in the saving process
    response = admin_client.post(f"/admin/ferroflag/flag/{flag.pk}/change/", _flag_form(enabled=None))
    assert response.status_code == 302
    assert Client().get("/flag/beta/").content == b"off"

    changes = list(FlagChange.objects.order_by("id"))
    assert [(c.action, c.username, c.comment) for c in changes] == [
        ("create", "root", "admin"),
        ("update", "root", "admin"),
        ("update", "root", "admin"),
    ]
    assert changes[1].before["percentage"] == 25
    assert changes[1].after == {"key": "beta", "enabled": True, "percentage": 100}
    page = admin_client.get(f"/admin/ferroflag/flag/{flag.pk}/change/").content.decode()
    assert "All changes" in page
    assert page.count("<td>update</td>") == 2
    detail = admin_client.get(f"/admin/ferroflag/flagchange/{changes[1].pk}/change/").content.decode()
    assert "-  &quot;percentage&quot;: 25" in detail or '-  "percentage": 25' in detail
    assert admin_client.get("/admin/ferroflag/flagchange/add/").status_code == 403


def test_admin_refuses_what_the_engine_rejects_with_its_message(admin_site, admin_client):
    store.save_flag({"key": "beta", "enabled": True}, using="default")
    flag = Flag.objects.get(key="beta")
    url = f"/admin/ferroflag/flag/{flag.pk}/change/"
    bad = json.dumps({"rules": [{"priority": 1.5}]})
    response = admin_client.post(url, _flag_form(definition=bad))
    assert response.status_code == 200  # the form again, with the error
    with pytest.raises(store.InvalidChange) as caught:
        store.validate_document({"flags": [{"key": "beta", "enabled": True, "rules": [{"priority": 1.5}]}]})
    page = response.content.decode()
    assert "rules[0].priority: " in page
    assert caught.value.message.replace('"', "&quot;") in page
    assert (
        "Set &#x27;enabled&#x27; in its own field"
        in admin_client.post(url, _flag_form(definition='{"enabled": false}')).content.decode()
    )
    assert "Enter a valid JSON" in admin_client.post(url, _flag_form(definition="{rules: []")).content.decode()
    store.save_flag({"key": "other", "enabled": False}, using="default")
    assert "already exists" in admin_client.post(url, _flag_form(key="other")).content.decode()
    assert store.export_document()["flags"] == [{"key": "beta", "enabled": True}, {"key": "other", "enabled": False}]
    assert FlagChange.objects.count() == 2


def test_admin_list_toggles_and_actions(admin_site, admin_client):
    store.save_flag({"key": "a", "enabled": False}, using="default")
    store.save_flag({"key": "b", "enabled": False, "percentage": 5}, using="default")
    a, b = Flag.objects.order_by("position")
    response = admin_client.post(
        "/admin/ferroflag/flag/",
        {"action": "enable_flags", "_selected_action": [a.pk, b.pk], "index": "0"},
    )
    assert response.status_code == 302
    assert [f["enabled"] for f in store.export_document()["flags"]] == [True, True]
    # list_editable: a percentage the engine refuses (not a number it can read) is an error in the list.
    form = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-0-id": str(a.pk),
        "form-0-enabled": "on",
        "form-0-percentage": "",
        "form-1-id": str(b.pk),
        "form-1-percentage": "50",
        "_save": "Save",
    }
    assert admin_client.post("/admin/ferroflag/flag/", form).status_code == 302
    assert store.export_document()["flags"] == [
        {"key": "a", "enabled": True},
        {"key": "b", "enabled": False, "percentage": 50},
    ]
    assert FlagChange.objects.filter(comment="admin action").count() == 2


def test_admin_saves_what_only_warns_and_shows_the_warning(admin_site, admin_client):
    definition = json.dumps({"rules": [{"conditions": [{"attribute": "plan", "operator": "is", "values": ["x"]}]}]})
    response = admin_client.post("/admin/ferroflag/flag/add/", _flag_form(definition=definition), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Saved, with a warning: beta: rules[0].conditions[0].operator: " in page
    assert "unknown operator" in page
    assert [f["key"] for f in store.export_document()["flags"]] == ["beta"]  # saved: it loads, with a warning


def test_admin_warns_when_the_site_does_not_serve_the_database(admin_client):
    with override_settings(ROOT_URLCONF=__name__):
        page = admin_client.get("/admin/ferroflag/flag/", follow=True).content.decode()
    assert "FERROFLAG has no DATABASE source" in page


def test_admin_segments(admin_site, admin_client):
    rules = {"rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@s.t"]}]}]}
    response = admin_client.post("/admin/ferroflag/segment/add/", {"key": "staff", "definition": json.dumps(rules)})
    assert response.status_code == 302
    assert store.export_document()["segments"] == [{"key": "staff", **rules}]
    seg = Segment.objects.get()
    bad = {"rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": [None]}]}]}
    response = admin_client.post(
        f"/admin/ferroflag/segment/{seg.pk}/change/", {"key": "staff", "definition": json.dumps(bad)}
    )
    assert response.status_code == 200
    assert "rules[0].conditions[0].values[0]: " in response.content.decode()
    assert FlagChange.objects.filter(kind="segment").count() == 1


# --- the admin in a real browser ----------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def live_server():
    """The test site (admin included) served by Django's live-server thread on loopback."""
    from django.test.testcases import LiveServerThread

    with override_settings(**ADMIN_SITE):
        ff_django.start()  # the first load before the server thread serves (see admin_site)
        server = LiveServerThread("127.0.0.1", static_handler=lambda app: app)
        server.daemon = True
        server.start()
        assert server.is_ready.wait(WAIT), "the live server did not start"
        if server.error:
            raise server.error
        try:
            yield f"http://127.0.0.1:{server.port}"
        finally:
            server.terminate()


@pytest.fixture
def browser():
    """Debian's chromium, headless, through its chromedriver (given by path: nothing is downloaded)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are not installed, and CI must run this test (see .ci/run)")
        pytest.skip("chromium and chromium-driver are not installed here (apt-get install, as .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
def test_admin_in_a_real_browser_toggle_edit_a_rule_and_see_a_refusal(live_server, browser, admin_user):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    store.save_flag({"key": "checkout", "enabled": False}, using="default")
    flag = Flag.objects.get(key="checkout")
    visitor = Client()  # another visitor of the site, not logged in
    assert visitor.get("/flag/checkout/").content == b"off"

    browser.get(f"{live_server}/admin/login/?next=/admin/ferroflag/flag/{flag.pk}/change/")
    browser.find_element(By.NAME, "username").send_keys("root")
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "enabled")))

    def submit() -> None:
        """Save and continue editing, and wait for the next page (not the one still showing)."""
        page = browser.find_element(By.TAG_NAME, "html")
        browser.find_element(By.NAME, "_continue").click()
        wait.until(expected_conditions.staleness_of(page))

    # Toggle the flag on: the site answers on for everyone at once.
    browser.find_element(By.NAME, "enabled").click()
    submit()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success")))
    assert visitor.get("/flag/checkout/").content == b"on"

    def set_definition(definition: dict) -> None:
        area = browser.find_element(By.NAME, "definition")
        area.clear()
        area.send_keys(json.dumps(definition))
        submit()

    # Edit a rule: on only for the staff domain (and off for other visitors, with percentage 0).
    rule = {"name": "staff", "conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@staff.test"]}]}
    set_definition({"rules": [rule]})
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success")))
    assert store.export_document()["flags"] == [{"key": "checkout", "enabled": True, "rules": [rule]}]
    assert visitor.get("/flag/checkout/").content == b"off"
    staff = Client()
    staff.force_login(admin_user)  # root@staff.test
    assert staff.get("/flag/checkout/").content == b"on"

    # A rule the engine refuses: its message in the form, nothing saved.
    set_definition({"rules": [{**rule, "priority": 1.5}]})
    error = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".errorlist")))
    assert "rules[0].priority" in error.text
    assert "integer" in error.text
    assert store.export_document()["flags"] == [{"key": "checkout", "enabled": True, "rules": [rule]}]
    assert [c.action for c in FlagChange.objects.order_by("id")] == ["create", "update", "update"]

    # The history, as the admin shows it.
    browser.get(f"{live_server}/admin/ferroflag/flagchange/?key=checkout")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 3
    assert "root" in rows[0].text


# --- management commands ------------------------------------------------------------------------


def _command(*args, database="default"):
    out, err = io.StringIO(), io.StringIO()
    with override_settings(FERROFLAG={"DATABASE": database, "INTERVAL": 3600.0}):
        call_command("ferroflag_flags", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_commands_list_enable_disable_set_percentage(alias):
    store.save_flag({"key": "beta", "enabled": False}, using=alias)
    store.save_flag(BETA | {"key": "gamma"}, using=alias)
    assert _command("list", database=alias).splitlines() == ["beta   off", "gamma  on, 25 %, 1 rules, 2 variants"]
    assert _command("enable", "beta", "--by", "ops-bot", database=alias) == "beta: on, 0 %\n"
    assert _command("set-percentage", "beta", "12.5", database=alias) == "beta: on, 12.5 %\n"
    assert _command("disable", "gamma", database=alias) == "gamma: off\n"
    assert store.export_document(alias)["flags"][0] == {"key": "beta", "enabled": True, "percentage": 12.5}
    changes = FlagChange.objects.using(alias).order_by("id")
    assert [(c.username, c.comment) for c in changes][2] == ("ops-bot", "manage.py ferroflag_flags enable")
    with pytest.raises(CommandError, match="no flag 'nope'"):
        _command("enable", "nope", database=alias)
    with pytest.raises(CommandError, match="between 0 and 100"):
        _command("set-percentage", "beta", "101", database=alias)


def test_commands_import_export_round_trip(alias, tmp_path):
    source = ROOT / "examples" / "flags.json"
    assert "created" in _command("import", str(source), database=alias)
    first = tmp_path / "first.json"
    second = tmp_path / "second.json"
    _command("export", str(first), database=alias)
    store.delete_flag(store.export_document(alias)["flags"][0]["key"], using=alias)
    assert "1 created" in _command("import", str(first), database=alias)
    _command("export", str(second), database=alias)
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text()) == store.export_document(alias)
    original = FlagEvaluator()
    original.load_file(source)
    assert store.validate_document(json.loads(first.read_text())).document() == original.document()

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flags": [{"key": "x", "enabled": "yes"}]}))
    with pytest.raises(CommandError, match=r"flags\[0\]\.enabled"):
        _command("import", str(bad), database=alias)
    assert "dry run" in _command("import", str(first), "--dry-run", database=alias)


def test_command_explain_for_a_user(admin_user):
    store.save_flag(BETA, using="default")
    text = _command("explain", "beta", "--user", "root")
    assert text.startswith("beta for user_id=")
    assert "\n\n" not in text  # one line per line
    assert "'root@staff.test'" in text
    assert "rules" in text
    data = json.loads(_command("explain", "beta", "--user-id", "u1", "--json"))
    assert data["flag"] == "beta"
    with pytest.raises(CommandError, match="no user 'nobody'"):
        _command("explain", "beta", "--user", "nobody")
    with pytest.raises(CommandError, match="no flag 'nope'"):
        _command("explain", "nope", "--user-id", "u1")


# --- test isolation -----------------------------------------------------------------------------


def test_override_flag_wins_over_the_database_source_and_restores_exactly(alias):
    from ferroflag.django.testutils import override_flag

    store.save_flag({"key": "db-flag", "enabled": True}, using=alias)
    store.save_flag({"key": "other", "enabled": False}, using=alias)
    site = {"FERROFLAG": {"DATABASE": alias, "INTERVAL": 60.0}, "ROOT_URLCONF": __name__}
    with override_settings(**site):
        with override_flag("db-flag", active=False):
            assert Client().get("/flag/db-flag/").content == b"off"  # the first request loads the database
            assert Client().get("/flag/other/").content == b"off"
            store.set_flag_fields("other", enabled=True, using=alias)  # a change meanwhile, applied at once
            assert Client().get("/flag/other/").content == b"on"
            store.set_flag_fields("db-flag", percentage=100, using=alias)
            assert Client().get("/flag/db-flag/").content == b"off"  # the override still wins
        # The same process, the same source: exactly the database's flags again.
        assert Client().get("/flag/db-flag/").content == b"on"
        assert ff_django.get_evaluator().document() == store.validate_document(store.export_document(alias)).document()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork() with threads running, as gunicorn does
def test_a_forked_worker_polls_the_database_on_its_own(postgres):
    store.save_flag({"key": "forked", "enabled": False}, using="pg")
    source = DatabaseSource(ff_django.get_evaluator(start=False), using="pg", interval=0.05)
    try:
        assert source.start(wait=WAIT)
        connections["pg"].close()  # nothing of this thread's crosses the fork
        pid = os.fork()
        if pid == 0:  # the child: a gunicorn worker forked from a process that was polling
            code = 1
            try:
                seen = wait_for(lambda: source.evaluator.is_enabled("forked", ANON), timeout=WAIT)
                code = 0 if seen and source.status().running else 2
            finally:
                os._exit(code)
        time.sleep(0.2)  # the child's poll thread is up
        store.set_flag_fields("forked", enabled=True, using="pg")
        deadline = time.monotonic() + WAIT + 5
        while time.monotonic() < deadline:
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked worker did not finish")
        assert os.waitstatus_to_exitcode(status) == 0  # the child saw the change through its own poll thread
    finally:
        source.stop()
