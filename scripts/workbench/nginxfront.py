"""A real nginx (Debian's binary) on loopback with the shipped configuration
(config/nginx/kiosk-central.conf), in front of servers the caller started: only the
upstream ports, the listening port and the certificate paths are put in; every limit and
timeout is as shipped. Also a private CA and a certificate for 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from workbench import ROOT
from workbench.localserver import free_port

SHIPPED = ROOT / "config" / "nginx" / "kiosk-central.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def make_private_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 signed by it, as a committee might run.
    Returns (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("committee test CA"))
        .issuer_name(name("committee test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


class NginxFront:
    def __init__(self, work: Path, upstreams: list[int], *, cert: Path, key: Path):
        self.work, self.upstreams, self.cert, self.key = Path(work), upstreams, cert, key
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        site = SHIPPED.read_text()
        servers = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in self.upstreams)
        site = re.sub(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, site, count=1)
        site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{self.port} ssl;")
        site = site.replace("    listen [::]:443 ssl;\n", "")
        site = site.replace("/etc/kiosk-central/tls/fullchain.pem", str(self.cert))
        site = site.replace("/etc/kiosk-central/tls/privkey.pem", str(self.key))
        (self.work / "kiosk-central.conf").write_text(site)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        tmp = self.work / "tmp"
        return (
            f"{user}worker_processes 2;\npid {self.work / 'nginx.pid'};\n"
            f"error_log {self.work / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
            "http {\n"
            f"  access_log {self.work / 'access.log'};\n"
            f"  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
            f"  fastcgi_temp_path {tmp}/fcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n"
            f"  include {self.work / 'kiosk-central.conf'};\n"
            "}\n"
        )

    def start(self, *, timeout_s: float = 15.0) -> NginxFront:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt install nginx; scripts/setup --test does)")
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "tmp").mkdir(exist_ok=True)
        conf = self.work / "nginx.conf"
        conf.write_text(self.config())
        check = subprocess.run(
            [binary, "-t", "-c", str(conf), "-p", str(self.work)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t: {check.stderr}")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.work), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"nginx exited: {(self.work / 'error.log').read_text()[-1000:]}"
                    ) from None
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> NginxFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
