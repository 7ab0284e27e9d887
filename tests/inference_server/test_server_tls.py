"""`serve` over HTTPS: --tls-self-signed makes and keeps a certificate, prints its fingerprint, and
the add-on's client reaches it by that fingerprint or the certificate as CA file; --tls-cert and
--tls-key take a certificate made in the test; bad TLS flags are refused before serving; a server
off loopback without TLS warns that the token crosses the network in clear."""
import stat
import time
from argparse import Namespace

import pytest

from glimpse_syncdreamer_addon.core.client import GlimpseClient, ServerError
from inference_server.errors import InputError
from inference_server.server.tls import (
    SELF_SIGNED_CERT, SELF_SIGNED_KEY, certificate_fingerprint, machine_names, make_self_signed, self_signed_files,
    tls_files_from_args)
from server_harness import TOKEN


def test_self_signed_serves_https_with_the_fingerprint_beside_the_ready_line(start_server, tmp_path):
    home = tmp_path / "home"
    server = start_server("--tls-self-signed", env_extra={"HOME": str(home)})
    folder = home / ".cache" / "glimpse3d" / "tls"
    cert, key = folder / SELF_SIGNED_CERT, folder / SELF_SIGNED_KEY
    fingerprint = certificate_fingerprint(cert)
    assert server.url.startswith("https://127.0.0.1:")
    assert server.ready["tls_fingerprint"] == fingerprint
    deadline = time.monotonic() + 30  # stderr is read apart from stdout: wait for the log line to arrive
    while not any(fingerprint in line for line in server.stderr_lines):
        assert time.monotonic() < deadline, server.stderr_lines
        time.sleep(0.05)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    assert GlimpseClient(server.url, TOKEN, fingerprint=fingerprint).health()["version"]
    assert GlimpseClient(server.url, TOKEN, ca_file=str(cert)).health()["version"]
    with pytest.raises(ServerError) as info:
        GlimpseClient(server.url, TOKEN).health()
    assert info.value.code == "untrusted_certificate"

    # the next start keeps the certificate, so the pinned fingerprint stays valid
    assert self_signed_files(folder, "127.0.0.1").fingerprint == fingerprint


def test_a_given_certificate_and_key_are_served(start_server, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(cert, key, machine_names("127.0.0.1"))
    server = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    assert server.ready["tls_fingerprint"] == certificate_fingerprint(cert)
    assert GlimpseClient(server.url, TOKEN, ca_file=str(cert)).health()["version"]


def _args(**given):
    return Namespace(**{"host": "127.0.0.1", "tls_cert": None, "tls_key": None, "tls_self_signed": False, **given})


def test_tls_flags_that_do_not_fit_are_refused(tmp_path):
    assert tls_files_from_args(_args(), tmp_path) is None
    with pytest.raises(InputError, match="go together"):
        tls_files_from_args(_args(tls_cert=tmp_path / "c.pem"), tmp_path)
    with pytest.raises(InputError, match="leave out --tls-cert"):
        tls_files_from_args(_args(tls_self_signed=True, tls_key=tmp_path / "k.pem"), tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        tls_files_from_args(_args(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"), tmp_path)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(cert, key, machine_names())
    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other-key.pem"
    make_self_signed(other_cert, other_key, machine_names())
    with pytest.raises(InputError, match="cannot use"):  # a key that is not the certificate's
        tls_files_from_args(_args(tls_cert=cert, tls_key=other_key), tmp_path)


def test_the_self_signed_certificate_names_this_machine():
    names, addresses = machine_names("127.0.0.1")
    assert "localhost" in names and "127.0.0.1" in {str(address) for address in addresses}


def test_off_loopback_without_tls_warns_that_the_token_crosses_in_clear(start_server, tmp_path):
    server = start_server("--host", "0.0.0.0")
    deadline = time.monotonic() + 30
    while not (warnings := [line for line in server.stderr_lines if "in clear text" in line]):
        assert time.monotonic() < deadline, server.stderr_lines
        time.sleep(0.05)
    assert len(warnings) == 1 and "--tls-self-signed" in warnings[0] and "0.0.0.0" in warnings[0]
