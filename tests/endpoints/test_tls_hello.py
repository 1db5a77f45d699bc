"""The hand-built ClientHello and the reading of the server's answer (k4c_pytest.sources.tls_hello).

The hellos are parsed back by tlslite-ng, an independent TLS implementation; the answers parsed
are the real bytes the loopback servers send (tlslite-ng accepting 3DES, OpenSSL 3 refusing it),
captured in the test, whole, cut into single bytes, re-fragmented and truncated.
"""

from __future__ import annotations

import socket
import ssl
import struct
import warnings

import pytest

from k4c_pytest.sources import tls_hello as th
from k4c_pytest.sources.tls_hello import SSL3, TLS1_0, TLS1_1, TLS1_2, Alert, Closed, Garbled, ServerHello, Undecided

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from tlslite.constants import CipherSuite
    from tlslite.messages import ClientHello
    from tlslite.utils.codec import Parser


def _parsed(record: bytes) -> ClientHello:
    assert record[0] == 22 and record[5] == 1  # a handshake record holding a ClientHello
    assert struct.unpack("!H", record[3:5])[0] == len(record) - 5
    return ClientHello().parse(Parser(bytearray(record[6:])))


def _raw_answer(port: int, version: int, suites: list[int]) -> bytes:
    """Everything the server sends back to one ClientHello, until it stops or 2 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(th.client_hello(version, suites))
        sock.settimeout(2)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if th.parse_reply(data, complete=False) is not None:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    return data


# -- the ClientHello -----------------------------------------------------------------------

def test_client_hello_offers_exactly_the_suites_asked_at_the_version_asked():
    suites = th.family_suites("3DES")
    hello = _parsed(th.client_hello(TLS1_2, suites, "app.example.com"))
    assert hello.client_version == (3, 3)
    assert hello.cipher_suites == suites
    assert hello.compression_methods == [0]
    assert bytes(hello.server_name) == b"app.example.com"
    # groups and point formats let ECDHE/ECDH suites be chosen; signature_algorithms is TLS 1.2's
    assert [e.extType for e in hello.extensions] == [0, 10, 11, 13, 0xFF01]


def test_client_hello_for_older_versions():
    tls10 = _parsed(th.client_hello(TLS1_0, [0x000A], "127.0.0.1"))
    assert tls10.client_version == (3, 1)
    assert tls10.server_name == bytearray()  # no SNI for an IP address
    assert 13 not in [e.extType for e in tls10.extensions]  # no signature_algorithms before TLS 1.2
    ssl3 = th.client_hello(SSL3, [0x000A, 0x0005])
    assert ssl3[1:3] == b"\x03\x00"  # SSLv3 record
    parsed = _parsed(ssl3)
    assert (parsed.client_version, parsed.cipher_suites, parsed.extensions) == ((3, 0), [0x000A, 0x0005], None)
    with pytest.raises(ValueError, match="at least one cipher suite"):
        th.client_hello(TLS1_2, [])


def test_client_hello_is_padded_out_of_the_256_to_511_byte_range():
    sizes = {n: len(th.client_hello(TLS1_2, list(th.SUITES)[:n], "app.example.com")) - 5 for n in range(1, 129)}
    assert not [n for n, size in sizes.items() if 256 <= size < 512]
    assert sizes[128] >= 512 and min(sizes.values()) < 256  # both sides of the gap occur
    padded = _parsed(th.client_hello(TLS1_2, list(th.SUITES)[:70], "app.example.com"))
    assert 21 in [e.extType for e in padded.extensions]


# -- the suite table -----------------------------------------------------------------------

def test_suite_table_agrees_with_tlslite_and_with_this_openssl():
    # Every suite tlslite-ng names has the same code point here (it spells anon ANON).
    theirs = {getattr(CipherSuite, n): n for n in dir(CipherSuite)
              if n.startswith("TLS_") and isinstance(getattr(CipherSuite, n), int)}
    common = [code for code in theirs if code in th.SUITES]
    assert len(common) > 100
    assert all(th.SUITES[c].upper() == theirs[c].upper() for c in common if "draft" not in theirs[c])
    # Every TLS 1.2-and-older suite this machine's OpenSSL has is in the table.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    local = {c["id"] & 0xFFFF for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"}
    assert local and local <= set(th.SUITES)


@pytest.mark.parametrize("family", ["aNULL", "eNULL", "MD5", "kRSA"])
def test_families_match_what_openssl_calls_them(family):
    # For the families this OpenSSL still has, its own selection and the table's agree on every
    # suite both know, so the code points of the families it lacks follow the same rules.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(f"{family}:@SECLEVEL=0")
    openssl = {c["id"] & 0xFFFF for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"}
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    known = {c["id"] & 0xFFFF for c in ctx.get_ciphers()}
    assert openssl == set(th.family_suites(family)) & known


def test_weak_families_by_name():
    assert th.families("TLS_RSA_WITH_3DES_EDE_CBC_SHA") == {"3DES", "kRSA"}
    assert th.families("TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA") == {"aNULL", "EXPORT", "DES"}
    assert th.families("TLS_DHE_RSA_WITH_DES_CBC_SHA") == {"DES", "LOW"}
    assert th.families("TLS_RSA_EXPORT_WITH_RC4_40_MD5") == {"EXPORT", "RC4", "MD5", "kRSA"}
    assert th.families("TLS_ECDHE_ECDSA_WITH_NULL_SHA") == {"eNULL"}
    assert th.families("TLS_DHE_RSA_WITH_SEED_CBC_SHA") == {"SEED"}
    assert th.families("TLS_RSA_WITH_AES_128_CCM_8") == {"kRSA"}
    assert th.families("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") == set()
    assert 0x000A in th.family_suites("3DES") and 0xC012 in th.family_suites("3DES")
    with pytest.raises(KeyError):
        th.family_suites("HIGH")


# -- the server's answer, from real servers ------------------------------------------------

def test_a_real_server_hello_is_read_whole_byte_by_byte_and_refragmented(legacy):
    data = _raw_answer(legacy.des3.port, TLS1_2, th.family_suites("3DES"))
    expected = ServerHello(TLS1_2, 0xC012)  # TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    assert th.parse_reply(data, complete=True) == expected
    # Fed a byte at a time, the answer is "more needed" until the ServerHello is complete.
    answers = [th.parse_reply(data[:n], complete=False) for n in range(1, len(data) + 1)]
    first = next(n for n, a in enumerate(answers, 1) if a is not None)
    assert answers[first - 1] == expected and set(answers[:first - 1]) == {None}
    # The ServerHello split over two records, and after a warning alert, reads the same.
    length = struct.unpack("!H", data[3:5])[0]
    fragment = data[5:5 + length]
    head = data[:3]
    split = (head + struct.pack("!H", 10) + fragment[:10] + head + struct.pack("!H", length - 10) + fragment[10:])
    assert th.parse_reply(split, complete=True) == expected
    warning = bytes([21, 3, 3, 0, 2, 1, 112])  # unrecognized_name, a warning
    assert th.parse_reply(warning + data, complete=True) == expected
    # Cut short, it decides nothing.
    assert th.parse_reply(data[:first - 1], complete=False) is None
    truncated = th.parse_reply(data[:first - 1], complete=True)
    assert isinstance(truncated, Garbled) and "mid-record" in truncated.detail


def test_real_refusals_are_read(web, legacy):
    # OpenSSL 3 has no 3DES at all: handshake_failure.
    refused = th.parse_reply(_raw_answer(web.good.port, TLS1_2, th.family_suites("3DES")), complete=True)
    assert refused == Alert(2, 40) and refused.name == "handshake_failure"
    # tlslite-ng limited to TLS 1.2 refuses a TLS 1.0 ClientHello: protocol_version.
    old = th.parse_reply(_raw_answer(legacy.des3.port, TLS1_0, [0x000A, 0xC012]), complete=True)
    assert old == Alert(2, 70) and old.name == "protocol_version"
    assert th.judge(refused, TLS1_2, th.family_suites("3DES"), exact_version=False) is None
    assert th.judge(old, TLS1_0, [0x000A, 0xC012], exact_version=True) is None


def test_probe_over_a_socket(web, legacy):
    assert th.probe("127.0.0.1", legacy.des3.port, TLS1_2, [0x000A, 0xC012], timeout=5) == ServerHello(TLS1_2, 0xC012)
    # OpenSSL 3 (no SSLv3 at all) refuses an SSLv3 ClientHello with a fatal alert that means so.
    ssl3 = th.probe("127.0.0.1", web.good.port, SSL3, list(th.SUITES)[:128], timeout=5)
    assert ssl3 in (Alert(2, 40), Alert(2, 70))
    assert th.judge(ssl3, SSL3, list(th.SUITES)[:128], exact_version=True) is None
    # A plain-HTTP server answers a ClientHello with an HTTP error: not TLS, decides nothing.
    garbled = th.probe("127.0.0.1", web.plain.port, TLS1_2, [0xC012], timeout=5)
    assert isinstance(garbled, Garbled) and "not a TLS record" in garbled.detail
    with pytest.raises(ConnectionRefusedError):
        th.probe("127.0.0.1", int(web.closed.rsplit(":", 1)[1].strip("/")), TLS1_2, [0xC012], timeout=5)


# -- what an answer means ------------------------------------------------------------------

def test_judge_accepts_only_what_was_offered_at_a_version_offered():
    offered = [0x000A, 0xC012]
    assert th.judge(ServerHello(TLS1_2, 0xC012), TLS1_2, offered, exact_version=False) == ServerHello(TLS1_2, 0xC012)
    assert th.judge(ServerHello(TLS1_0, 0x000A), TLS1_2, offered, exact_version=False) == ServerHello(TLS1_0, 0x000A)
    # Asked whether TLS 1.1 is spoken, a TLS 1.0 answer is no (the TLS 1.0 probe finds it).
    assert th.judge(ServerHello(TLS1_0, 0x000A), TLS1_1, offered, exact_version=True) is None
    assert th.judge(Closed("closed the connection without answering"), TLS1_2, offered, exact_version=False) is None
    for reply, message in [
        (ServerHello(TLS1_2, 0x002F), "suite 0x002F, which was not offered"),
        (ServerHello(TLS1_2, 0x000A), "a TLSv1.1 ClientHello with a TLSv1.2 ServerHello"),
        (Alert(2, 50), "the alert decode_error, which tells neither acceptance nor refusal"),
        (Alert(2, 80), "the alert internal_error"),
        (Garbled("an SSLv2-format answer"), "unreadable: an SSLv2-format answer"),
    ]:
        version = TLS1_1 if reply == ServerHello(TLS1_2, 0x000A) else TLS1_2
        with pytest.raises(Undecided, match=message):
            th.judge(reply, version, offered, exact_version=False)


def test_odd_answers_are_garbled_not_refusals():
    assert th.parse_reply(b"", complete=True) == Closed("closed the connection without answering")
    assert th.parse_reply(b"", complete=False) is None
    assert isinstance(th.parse_reply(b"\x80\x2e\x04\x00\x01", complete=True), Garbled)  # SSLv2 server-hello
    assert "content type 23" in th.parse_reply(bytes([23, 3, 3, 0, 1, 0]), complete=True).detail
    assert "handshake message type 11" in th.parse_reply(bytes([22, 3, 3, 0, 4, 11, 0, 0, 0]), complete=True).detail
    assert "alert record of 3 bytes" in th.parse_reply(bytes([21, 3, 3, 0, 3, 2, 40, 0]), complete=True).detail
    short = bytes([22, 3, 3, 0, 8, 2, 0, 0, 4, 3, 3, 0, 0])
    assert "too short" in th.parse_reply(short, complete=True).detail
    assert th.parse_reply(bytes([21, 3, 3, 0, 2, 1, 0]), complete=True) == Alert(1, 0)  # close_notify: refused
