import sys
from pathlib import Path

import pytest

from kiosk.keys import (ISSUER_KEY, ISSUER_PUB, SEALING_KEY, SEALING_PUB, init_authority_keys,
                        load_ed25519_private, load_x25519_private, load_x25519_public,
                        trusted_issuers)
from kiosk.passes import encode_pass
from kiosk.seal import SealingKey

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "qr-photos"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def authority(tmp_path_factory):
    """An authority key folder, as `kiosk-central keys init` makes it."""
    d = tmp_path_factory.mktemp("authority")
    init_authority_keys(d)
    return d


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL for the session, or a skip that says why (CI installs it)."""
    from pgserver import PgServer, server_binaries
    if server_binaries() is None:
        pytest.skip("PostgreSQL tests skipped: no server binaries here (apt install postgresql; "
                    "scripts/setup --test does)")
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    return pg_server.fresh_database()


@pytest.fixture(scope="session")
def server_keys(authority, tmp_path_factory):
    """The central server's keys folder: bundle.key and public files, no private key."""
    from sync.keyring import server_keys_folder
    return server_keys_folder(authority, tmp_path_factory.mktemp("server-keys"))


@pytest.fixture(scope="session")
def issuer_key(authority):
    return load_ed25519_private(authority / ISSUER_KEY)


@pytest.fixture(scope="session")
def trusted(authority):
    return trusted_issuers([authority / ISSUER_PUB])


@pytest.fixture(scope="session")
def sealing(authority):
    return SealingKey.of(load_x25519_public(authority / SEALING_PUB))


@pytest.fixture(scope="session")
def committee_key(authority):
    return load_x25519_private(authority / SEALING_KEY)


NOW = 1_790_000_000  # a fixed wall-clock time for table tests


@pytest.fixture(scope="session")
def make_pass(issuer_key):
    def make(risk=0, *, issued=NOW - 3600, expires=NOW + 7 * 86400, pass_id=None, key=None):
        pid = pass_id or bytes(range(risk, risk + 16))
        return encode_pass(signing_key=key or issuer_key, issuer="test-authority",
                           issued_at=issued, expires_at=expires, pass_id=pid, risk_level=risk)
    return make


def kiosk_config_text(authority: Path, db: Path, **overrides) -> str:
    """A minimal valid kiosk config for tests, with optional raw TOML lines per section."""
    sections = {
        "kiosk": ['venue_id = "venue-test"', f'database = "{db}"'],
        "keys": [f'issuer_keys = ["{authority / ISSUER_PUB}"]',
                 f'sealing_key = "{authority / SEALING_PUB}"'],
        "signal": ['pin_factory = "mock"'],
    }
    for section, lines in overrides.items():
        sections.setdefault(section, []).extend(lines)
    return "\n".join(f"[{s}]\n" + "\n".join(lines) for s, lines in sections.items()) + "\n"
