"""scripts/attacks, run here: every attack of whoever runs the server (its keys folder and
database), of the network and of one member, tried against real processes; none succeeds."""

from workbench import attacks


def test_no_attack_on_the_promises_succeeds(tmp_path):
    rows = attacks.run_all(tmp_path)
    table = attacks.table(rows)
    assert len(rows) >= 15, table
    assert [r.attack for r in rows if not r.held] == [], table
    assert "attacks succeeded     0" in table
