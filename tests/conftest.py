"""Fixtures shared by the whole suite; plain helpers live in tests/testkit.py, the seeded world
(keys, a committee, a case) the tools share in scripts/workbench/world.py."""

import pytest

from kiosk.core.keys import (
    ISSUER_KEY,
    ISSUER_PUB,
    load_ed25519_private,
    trusted_issuers,
)
from kiosk.core.passes import encode_pass
from kiosk.core.seal import SealingKey
from testkit import NOW
from workbench.world import seeded_authority, seeded_x25519

SLOW_FIXTURES = {"pg_server", "pg_url", "venvs"}  # a real PostgreSQL; whole venvs per role


def pytest_collection_modifyitems(items):
    """The fast lane (`scripts/test --fast`, ``-m "not slow"``) leaves out the whole-system
    checks (tests/system: real nginx, Chromium, PostgreSQL, installs, the fault, attack and
    privacy suites) and anything on a real PostgreSQL; the everyday loop keeps every unit and
    component test, on real SQLite files and real HTTP. Software updates (releases built from
    this checkout, installed side by side) are whole-system checks too."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            "tests/system/" in item.nodeid
            or "test_updater.py" in item.nodeid
            or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
            or "postgresql" in params.values()
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def authority(tmp_path_factory):
    """An authority key folder, as `kiosk-central keys init` makes it."""
    return seeded_authority(tmp_path_factory.mktemp("authority"))


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL for the session, or a skip that says why (CI installs it)."""
    from workbench.pgserver import PgServer, server_binaries

    if server_binaries() is None:
        pytest.skip(
            "PostgreSQL tests skipped: no server binaries here (apt install postgresql; "
            "scripts/setup --test does)"
        )
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    return pg_server.fresh_database()


@pytest.fixture(scope="session")
def server_keys(authority, tmp_path_factory):
    """The central server's keys folder, as `kiosk-central keys server` makes it."""
    from sync.central.keyring import server_keys_folder

    return server_keys_folder(authority, tmp_path_factory.mktemp("server-keys"))


@pytest.fixture(scope="session")
def issuer_key(authority):
    return load_ed25519_private(authority / ISSUER_KEY)


@pytest.fixture(scope="session")
def trusted(authority):
    return trusted_issuers([authority / ISSUER_PUB])


@pytest.fixture(scope="session")
def sealing(committee_key):
    """A fixed sealing key handed to the store in unit tests (the kiosk itself seals only to
    the committee's period keys: see kiosk.compose.open_store)."""
    return SealingKey.of(committee_key.public_key())


@pytest.fixture(scope="session")
def committee_key():
    return seeded_x25519("test/sealing")


@pytest.fixture(scope="session")
def make_pass(issuer_key):
    def make(risk=0, *, issued=NOW - 3600, expires=NOW + 7 * 86400, pass_id=None, key=None):
        pid = pass_id or bytes(range(risk, risk + 16))
        return encode_pass(
            signing_key=key or issuer_key,
            issuer="test-authority",
            issued_at=issued,
            expires_at=expires,
            pass_id=pid,
            risk_level=risk,
        )

    return make


@pytest.fixture(autouse=True)
def witness_file(tmp_path, monkeypatch):
    """Each test's own record of the audit heads "this machine" verified (never the real
    ~/.local/state/kiosk-central), inherited by the commands it runs."""
    path = tmp_path / "witnessed.json"
    monkeypatch.setenv("KIOSK_CENTRAL_WITNESS", str(path))
    return path


@pytest.fixture(autouse=True)
def seeded_randomness(request, monkeypatch):
    """Every test makes the same keys, pass ids, kiosk ids and noise on every run: Python's
    and numpy's generators are seeded from the test's name, and keys and random bytes made in
    this process come from a stream seeded the same way. (Processes a test starts, and the
    ephemeral keys inside HPKE, keep the system's randomness: nothing a test asserts on.)"""
    import random
    import secrets

    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from workbench.world import seed_bytes

    name = request.node.nodeid
    random.seed(name)
    np.random.seed(int.from_bytes(seed_bytes(name, 4), "big"))
    counter = iter(range(1 << 30))

    def token_bytes(n=32):
        return seed_bytes(f"{name}#{next(counter)}", n)

    monkeypatch.setattr(secrets, "token_bytes", token_bytes)
    monkeypatch.setattr(secrets, "token_hex", lambda n=32: token_bytes(n).hex())
    monkeypatch.setattr(
        Ed25519PrivateKey,
        "generate",
        staticmethod(lambda: Ed25519PrivateKey.from_private_bytes(token_bytes())),
    )
    monkeypatch.setattr(
        X25519PrivateKey, "generate", staticmethod(lambda: X25519PrivateKey.from_private_bytes(token_bytes()))
    )
