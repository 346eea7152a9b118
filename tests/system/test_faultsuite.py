"""The fault suite, short (scripts/faults runs it long): every fault injected for real, and
nothing lost, duplicated, forged, crashed, silent, green on failure or readable on a stolen
kiosk. See scripts/workbench/faultsuite.py for what each scenario does."""

import random

import pytest

from workbench import faultsuite


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    return faultsuite.Authority(tmp_path_factory.mktemp("fs-authority"))


def check(t, *, faults=1, checkins=0):
    assert t.faults_injected >= faults, t
    assert t.checkins_made >= checkins, t
    assert t.bad() == {}, t


def test_sigkill_during_kiosk_run_loses_no_shown_check_in(tmp_path, auth):
    check(faultsuite.crash_run(tmp_path, auth, kills=3, rng=random.Random(1)), faults=3, checkins=10)


def test_sigkill_during_kiosk_sync_loses_and_duplicates_nothing(tmp_path, auth):
    check(
        faultsuite.crash_sync(tmp_path, auth, kills=3, records=300, rng=random.Random(2)),
        faults=2,
        checkins=300,
    )


def test_a_full_disk_never_shows_green_and_recording_resumes(tmp_path, auth):
    check(faultsuite.disk_full(tmp_path, auth, rounds=1), checkins=30)


def test_a_held_write_lock_shows_amber_and_recording_resumes(tmp_path, auth):
    check(faultsuite.write_lock(tmp_path, auth, rounds=2), checkins=10)


def test_damaged_databases_and_wals_are_used_or_moved_aside_never_crash(tmp_path, auth):
    check(faultsuite.corrupt_db(tmp_path, auth, variants=12, rng=random.Random(3)), faults=12)


def test_a_camera_that_goes_shows_amber_then_recovers_or_exits(tmp_path, auth):
    check(faultsuite.camera_faults(tmp_path, auth, rounds=2), faults=2)


def test_a_proxy_answering_4xx_and_5xx_sets_nothing_aside(tmp_path, auth):
    check(faultsuite.proxy_faults(tmp_path, auth, records=60, rng=random.Random(4)), checkins=60)


def test_hostile_passes_are_never_admitted_and_never_crash(auth):
    check(faultsuite.hostile_passes(auth, examples=60), faults=5000)


def test_a_stolen_kiosk_holds_no_pass_id_in_any_file_or_log(tmp_path, auth):
    faultsuite.crash_run(tmp_path, auth, kills=1, rng=random.Random(5))
    logs, ids = faultsuite.kiosk_run_logs(tmp_path, auth)
    assert "1 recorded" in logs[1] or "recorded" in logs[1], logs[1][-500:]
    t = faultsuite.stolen_kiosk(
        [tmp_path / "crash-run.db", tmp_path / "run"],
        logs,
        ids + [faultsuite.pass_id(n) for n in sorted(auth.issued)],
    )
    check(t)
    # The search itself finds a pass id when one is there (a check that can fail).
    planted = faultsuite.stolen_kiosk([], [f"oops {ids[0].hex()}"], ids)
    assert planted.stolen_leaks == 1


def test_the_table_has_the_rows_other_tools_read():
    text = faultsuite.table({"x": faultsuite.Tally(faults_injected=3)})
    labels = [line.rsplit("  ", 1)[0].strip() for line in text.splitlines()]
    assert labels[:8] == [
        "faults injected",
        "check-ins made",
        "records lost",
        "duplicates",
        "forged admits",
        "crashes",
        "silent failures",
        "green on failure",
    ]
