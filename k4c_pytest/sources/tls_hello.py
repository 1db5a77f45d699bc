"""Hand-built TLS ClientHellos, for what this machine's OpenSSL cannot offer.

OpenSSL 3 builds carry no RC4, DES, 3DES, EXPORT, IDEA or SEED suites and no SSLv3, so a
client built on them cannot ask a server whether it still accepts those. A server decides
that on the ClientHello alone: it answers with a ServerHello naming the suite and version it
chose, or with an alert (or by closing the connection) when it has none in common. So k4c
writes the ClientHello itself, offering nothing but the IANA code points in question, reads
the server's first answer and closes: no key is exchanged, nothing is encrypted, and whether
k4c could finish the handshake does not matter.

:func:`probe` sends one ClientHello over a plain socket and returns the parsed answer;
:func:`judge` turns it into accepted / refused, or raises :class:`Undecided` for an answer
that says neither (an unexpected alert, a malformed or truncated record, a ServerHello with a
suite or version that was not offered). Nothing is guessed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

SSL3, TLS1_0, TLS1_1, TLS1_2 = 0x0300, 0x0301, 0x0302, 0x0303
VERSION_NAMES = {SSL3: "SSLv3", TLS1_0: "TLSv1.0", TLS1_1: "TLSv1.1", TLS1_2: "TLSv1.2", 0x0304: "TLSv1.3"}

#: Suites per ClientHello: some servers fail on longer lists (testssl.sh splits at 128 too).
CHUNK = 128
#: Bytes read at most before the first handshake message must be complete.
MAX_REPLY = 64 * 1024

# The IANA TLS cipher suite registry for TLS 1.2 and older (TLS 1.3 has only strong suites),
# plus 0x0060-0x0066, the pre-standard EXPORT1024 suites OpenSSL 0.9.x shipped, which the
# registry reserves because they are deployed. Signalling values (0x00FF, 0x5600) are not suites.
_REGISTRY = """
0001 TLS_RSA_WITH_NULL_MD5
0002 TLS_RSA_WITH_NULL_SHA
0003 TLS_RSA_EXPORT_WITH_RC4_40_MD5
0004 TLS_RSA_WITH_RC4_128_MD5
0005 TLS_RSA_WITH_RC4_128_SHA
0006 TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5
0007 TLS_RSA_WITH_IDEA_CBC_SHA
0008 TLS_RSA_EXPORT_WITH_DES40_CBC_SHA
0009 TLS_RSA_WITH_DES_CBC_SHA
000A TLS_RSA_WITH_3DES_EDE_CBC_SHA
000B TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA
000C TLS_DH_DSS_WITH_DES_CBC_SHA
000D TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA
000E TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA
000F TLS_DH_RSA_WITH_DES_CBC_SHA
0010 TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA
0011 TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA
0012 TLS_DHE_DSS_WITH_DES_CBC_SHA
0013 TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA
0014 TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA
0015 TLS_DHE_RSA_WITH_DES_CBC_SHA
0016 TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA
0017 TLS_DH_anon_EXPORT_WITH_RC4_40_MD5
0018 TLS_DH_anon_WITH_RC4_128_MD5
0019 TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA
001A TLS_DH_anon_WITH_DES_CBC_SHA
001B TLS_DH_anon_WITH_3DES_EDE_CBC_SHA
001E TLS_KRB5_WITH_DES_CBC_SHA
001F TLS_KRB5_WITH_3DES_EDE_CBC_SHA
0020 TLS_KRB5_WITH_RC4_128_SHA
0021 TLS_KRB5_WITH_IDEA_CBC_SHA
0022 TLS_KRB5_WITH_DES_CBC_MD5
0023 TLS_KRB5_WITH_3DES_EDE_CBC_MD5
0024 TLS_KRB5_WITH_RC4_128_MD5
0025 TLS_KRB5_WITH_IDEA_CBC_MD5
0026 TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA
0027 TLS_KRB5_EXPORT_WITH_RC2_CBC_40_SHA
0028 TLS_KRB5_EXPORT_WITH_RC4_40_SHA
0029 TLS_KRB5_EXPORT_WITH_DES_CBC_40_MD5
002A TLS_KRB5_EXPORT_WITH_RC2_CBC_40_MD5
002B TLS_KRB5_EXPORT_WITH_RC4_40_MD5
002C TLS_PSK_WITH_NULL_SHA
002D TLS_DHE_PSK_WITH_NULL_SHA
002E TLS_RSA_PSK_WITH_NULL_SHA
002F TLS_RSA_WITH_AES_128_CBC_SHA
0030 TLS_DH_DSS_WITH_AES_128_CBC_SHA
0031 TLS_DH_RSA_WITH_AES_128_CBC_SHA
0032 TLS_DHE_DSS_WITH_AES_128_CBC_SHA
0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA
0034 TLS_DH_anon_WITH_AES_128_CBC_SHA
0035 TLS_RSA_WITH_AES_256_CBC_SHA
0036 TLS_DH_DSS_WITH_AES_256_CBC_SHA
0037 TLS_DH_RSA_WITH_AES_256_CBC_SHA
0038 TLS_DHE_DSS_WITH_AES_256_CBC_SHA
0039 TLS_DHE_RSA_WITH_AES_256_CBC_SHA
003A TLS_DH_anon_WITH_AES_256_CBC_SHA
003B TLS_RSA_WITH_NULL_SHA256
003C TLS_RSA_WITH_AES_128_CBC_SHA256
003D TLS_RSA_WITH_AES_256_CBC_SHA256
003E TLS_DH_DSS_WITH_AES_128_CBC_SHA256
003F TLS_DH_RSA_WITH_AES_128_CBC_SHA256
0040 TLS_DHE_DSS_WITH_AES_128_CBC_SHA256
0041 TLS_RSA_WITH_CAMELLIA_128_CBC_SHA
0042 TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA
0043 TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA
0044 TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA
0045 TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA
0046 TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA
0060 TLS_RSA_EXPORT1024_WITH_RC4_56_MD5
0061 TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5
0062 TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA
0063 TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA
0064 TLS_RSA_EXPORT1024_WITH_RC4_56_SHA
0065 TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA
0066 TLS_DHE_DSS_WITH_RC4_128_SHA
0067 TLS_DHE_RSA_WITH_AES_128_CBC_SHA256
0068 TLS_DH_DSS_WITH_AES_256_CBC_SHA256
0069 TLS_DH_RSA_WITH_AES_256_CBC_SHA256
006A TLS_DHE_DSS_WITH_AES_256_CBC_SHA256
006B TLS_DHE_RSA_WITH_AES_256_CBC_SHA256
006C TLS_DH_anon_WITH_AES_128_CBC_SHA256
006D TLS_DH_anon_WITH_AES_256_CBC_SHA256
0084 TLS_RSA_WITH_CAMELLIA_256_CBC_SHA
0085 TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA
0086 TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA
0087 TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA
0088 TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA
0089 TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA
008A TLS_PSK_WITH_RC4_128_SHA
008B TLS_PSK_WITH_3DES_EDE_CBC_SHA
008C TLS_PSK_WITH_AES_128_CBC_SHA
008D TLS_PSK_WITH_AES_256_CBC_SHA
008E TLS_DHE_PSK_WITH_RC4_128_SHA
008F TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA
0090 TLS_DHE_PSK_WITH_AES_128_CBC_SHA
0091 TLS_DHE_PSK_WITH_AES_256_CBC_SHA
0092 TLS_RSA_PSK_WITH_RC4_128_SHA
0093 TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA
0094 TLS_RSA_PSK_WITH_AES_128_CBC_SHA
0095 TLS_RSA_PSK_WITH_AES_256_CBC_SHA
0096 TLS_RSA_WITH_SEED_CBC_SHA
0097 TLS_DH_DSS_WITH_SEED_CBC_SHA
0098 TLS_DH_RSA_WITH_SEED_CBC_SHA
0099 TLS_DHE_DSS_WITH_SEED_CBC_SHA
009A TLS_DHE_RSA_WITH_SEED_CBC_SHA
009B TLS_DH_anon_WITH_SEED_CBC_SHA
009C TLS_RSA_WITH_AES_128_GCM_SHA256
009D TLS_RSA_WITH_AES_256_GCM_SHA384
009E TLS_DHE_RSA_WITH_AES_128_GCM_SHA256
009F TLS_DHE_RSA_WITH_AES_256_GCM_SHA384
00A0 TLS_DH_RSA_WITH_AES_128_GCM_SHA256
00A1 TLS_DH_RSA_WITH_AES_256_GCM_SHA384
00A2 TLS_DHE_DSS_WITH_AES_128_GCM_SHA256
00A3 TLS_DHE_DSS_WITH_AES_256_GCM_SHA384
00A4 TLS_DH_DSS_WITH_AES_128_GCM_SHA256
00A5 TLS_DH_DSS_WITH_AES_256_GCM_SHA384
00A6 TLS_DH_anon_WITH_AES_128_GCM_SHA256
00A7 TLS_DH_anon_WITH_AES_256_GCM_SHA384
00A8 TLS_PSK_WITH_AES_128_GCM_SHA256
00A9 TLS_PSK_WITH_AES_256_GCM_SHA384
00AA TLS_DHE_PSK_WITH_AES_128_GCM_SHA256
00AB TLS_DHE_PSK_WITH_AES_256_GCM_SHA384
00AC TLS_RSA_PSK_WITH_AES_128_GCM_SHA256
00AD TLS_RSA_PSK_WITH_AES_256_GCM_SHA384
00AE TLS_PSK_WITH_AES_128_CBC_SHA256
00AF TLS_PSK_WITH_AES_256_CBC_SHA384
00B0 TLS_PSK_WITH_NULL_SHA256
00B1 TLS_PSK_WITH_NULL_SHA384
00B2 TLS_DHE_PSK_WITH_AES_128_CBC_SHA256
00B3 TLS_DHE_PSK_WITH_AES_256_CBC_SHA384
00B4 TLS_DHE_PSK_WITH_NULL_SHA256
00B5 TLS_DHE_PSK_WITH_NULL_SHA384
00B6 TLS_RSA_PSK_WITH_AES_128_CBC_SHA256
00B7 TLS_RSA_PSK_WITH_AES_256_CBC_SHA384
00B8 TLS_RSA_PSK_WITH_NULL_SHA256
00B9 TLS_RSA_PSK_WITH_NULL_SHA384
00BA TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256
00BB TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA256
00BC TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA256
00BD TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256
00BE TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256
00BF TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256
00C0 TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256
00C1 TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA256
00C2 TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA256
00C3 TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256
00C4 TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256
00C5 TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256
C001 TLS_ECDH_ECDSA_WITH_NULL_SHA
C002 TLS_ECDH_ECDSA_WITH_RC4_128_SHA
C003 TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA
C004 TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA
C005 TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA
C006 TLS_ECDHE_ECDSA_WITH_NULL_SHA
C007 TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
C008 TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA
C009 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
C00A TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
C00B TLS_ECDH_RSA_WITH_NULL_SHA
C00C TLS_ECDH_RSA_WITH_RC4_128_SHA
C00D TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA
C00E TLS_ECDH_RSA_WITH_AES_128_CBC_SHA
C00F TLS_ECDH_RSA_WITH_AES_256_CBC_SHA
C010 TLS_ECDHE_RSA_WITH_NULL_SHA
C011 TLS_ECDHE_RSA_WITH_RC4_128_SHA
C012 TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
C013 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
C014 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
C015 TLS_ECDH_anon_WITH_NULL_SHA
C016 TLS_ECDH_anon_WITH_RC4_128_SHA
C017 TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA
C018 TLS_ECDH_anon_WITH_AES_128_CBC_SHA
C019 TLS_ECDH_anon_WITH_AES_256_CBC_SHA
C01A TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA
C01B TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA
C01C TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA
C01D TLS_SRP_SHA_WITH_AES_128_CBC_SHA
C01E TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA
C01F TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA
C020 TLS_SRP_SHA_WITH_AES_256_CBC_SHA
C021 TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA
C022 TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA
C023 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
C024 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
C025 TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256
C026 TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384
C027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
C028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
C029 TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256
C02A TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384
C02B TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
C02C TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
C02D TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256
C02E TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384
C02F TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
C030 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
C031 TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256
C032 TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384
C033 TLS_ECDHE_PSK_WITH_RC4_128_SHA
C034 TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA
C035 TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA
C036 TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA
C037 TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256
C038 TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384
C039 TLS_ECDHE_PSK_WITH_NULL_SHA
C03A TLS_ECDHE_PSK_WITH_NULL_SHA256
C03B TLS_ECDHE_PSK_WITH_NULL_SHA384
C03C TLS_RSA_WITH_ARIA_128_CBC_SHA256
C03D TLS_RSA_WITH_ARIA_256_CBC_SHA384
C03E TLS_DH_DSS_WITH_ARIA_128_CBC_SHA256
C03F TLS_DH_DSS_WITH_ARIA_256_CBC_SHA384
C040 TLS_DH_RSA_WITH_ARIA_128_CBC_SHA256
C041 TLS_DH_RSA_WITH_ARIA_256_CBC_SHA384
C042 TLS_DHE_DSS_WITH_ARIA_128_CBC_SHA256
C043 TLS_DHE_DSS_WITH_ARIA_256_CBC_SHA384
C044 TLS_DHE_RSA_WITH_ARIA_128_CBC_SHA256
C045 TLS_DHE_RSA_WITH_ARIA_256_CBC_SHA384
C046 TLS_DH_anon_WITH_ARIA_128_CBC_SHA256
C047 TLS_DH_anon_WITH_ARIA_256_CBC_SHA384
C048 TLS_ECDHE_ECDSA_WITH_ARIA_128_CBC_SHA256
C049 TLS_ECDHE_ECDSA_WITH_ARIA_256_CBC_SHA384
C04A TLS_ECDH_ECDSA_WITH_ARIA_128_CBC_SHA256
C04B TLS_ECDH_ECDSA_WITH_ARIA_256_CBC_SHA384
C04C TLS_ECDHE_RSA_WITH_ARIA_128_CBC_SHA256
C04D TLS_ECDHE_RSA_WITH_ARIA_256_CBC_SHA384
C04E TLS_ECDH_RSA_WITH_ARIA_128_CBC_SHA256
C04F TLS_ECDH_RSA_WITH_ARIA_256_CBC_SHA384
C050 TLS_RSA_WITH_ARIA_128_GCM_SHA256
C051 TLS_RSA_WITH_ARIA_256_GCM_SHA384
C052 TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256
C053 TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384
C054 TLS_DH_RSA_WITH_ARIA_128_GCM_SHA256
C055 TLS_DH_RSA_WITH_ARIA_256_GCM_SHA384
C056 TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256
C057 TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384
C058 TLS_DH_DSS_WITH_ARIA_128_GCM_SHA256
C059 TLS_DH_DSS_WITH_ARIA_256_GCM_SHA384
C05A TLS_DH_anon_WITH_ARIA_128_GCM_SHA256
C05B TLS_DH_anon_WITH_ARIA_256_GCM_SHA384
C05C TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256
C05D TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384
C05E TLS_ECDH_ECDSA_WITH_ARIA_128_GCM_SHA256
C05F TLS_ECDH_ECDSA_WITH_ARIA_256_GCM_SHA384
C060 TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256
C061 TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384
C062 TLS_ECDH_RSA_WITH_ARIA_128_GCM_SHA256
C063 TLS_ECDH_RSA_WITH_ARIA_256_GCM_SHA384
C064 TLS_PSK_WITH_ARIA_128_CBC_SHA256
C065 TLS_PSK_WITH_ARIA_256_CBC_SHA384
C066 TLS_DHE_PSK_WITH_ARIA_128_CBC_SHA256
C067 TLS_DHE_PSK_WITH_ARIA_256_CBC_SHA384
C068 TLS_RSA_PSK_WITH_ARIA_128_CBC_SHA256
C069 TLS_RSA_PSK_WITH_ARIA_256_CBC_SHA384
C06A TLS_PSK_WITH_ARIA_128_GCM_SHA256
C06B TLS_PSK_WITH_ARIA_256_GCM_SHA384
C06C TLS_DHE_PSK_WITH_ARIA_128_GCM_SHA256
C06D TLS_DHE_PSK_WITH_ARIA_256_GCM_SHA384
C06E TLS_RSA_PSK_WITH_ARIA_128_GCM_SHA256
C06F TLS_RSA_PSK_WITH_ARIA_256_GCM_SHA384
C070 TLS_ECDHE_PSK_WITH_ARIA_128_CBC_SHA256
C071 TLS_ECDHE_PSK_WITH_ARIA_256_CBC_SHA384
C072 TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256
C073 TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384
C074 TLS_ECDH_ECDSA_WITH_CAMELLIA_128_CBC_SHA256
C075 TLS_ECDH_ECDSA_WITH_CAMELLIA_256_CBC_SHA384
C076 TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256
C077 TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384
C078 TLS_ECDH_RSA_WITH_CAMELLIA_128_CBC_SHA256
C079 TLS_ECDH_RSA_WITH_CAMELLIA_256_CBC_SHA384
C07A TLS_RSA_WITH_CAMELLIA_128_GCM_SHA256
C07B TLS_RSA_WITH_CAMELLIA_256_GCM_SHA384
C07C TLS_DHE_RSA_WITH_CAMELLIA_128_GCM_SHA256
C07D TLS_DHE_RSA_WITH_CAMELLIA_256_GCM_SHA384
C07E TLS_DH_RSA_WITH_CAMELLIA_128_GCM_SHA256
C07F TLS_DH_RSA_WITH_CAMELLIA_256_GCM_SHA384
C080 TLS_DHE_DSS_WITH_CAMELLIA_128_GCM_SHA256
C081 TLS_DHE_DSS_WITH_CAMELLIA_256_GCM_SHA384
C082 TLS_DH_DSS_WITH_CAMELLIA_128_GCM_SHA256
C083 TLS_DH_DSS_WITH_CAMELLIA_256_GCM_SHA384
C084 TLS_DH_anon_WITH_CAMELLIA_128_GCM_SHA256
C085 TLS_DH_anon_WITH_CAMELLIA_256_GCM_SHA384
C086 TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256
C087 TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384
C088 TLS_ECDH_ECDSA_WITH_CAMELLIA_128_GCM_SHA256
C089 TLS_ECDH_ECDSA_WITH_CAMELLIA_256_GCM_SHA384
C08A TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256
C08B TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384
C08C TLS_ECDH_RSA_WITH_CAMELLIA_128_GCM_SHA256
C08D TLS_ECDH_RSA_WITH_CAMELLIA_256_GCM_SHA384
C08E TLS_PSK_WITH_CAMELLIA_128_GCM_SHA256
C08F TLS_PSK_WITH_CAMELLIA_256_GCM_SHA384
C090 TLS_DHE_PSK_WITH_CAMELLIA_128_GCM_SHA256
C091 TLS_DHE_PSK_WITH_CAMELLIA_256_GCM_SHA384
C092 TLS_RSA_PSK_WITH_CAMELLIA_128_GCM_SHA256
C093 TLS_RSA_PSK_WITH_CAMELLIA_256_GCM_SHA384
C094 TLS_PSK_WITH_CAMELLIA_128_CBC_SHA256
C095 TLS_PSK_WITH_CAMELLIA_256_CBC_SHA384
C096 TLS_DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256
C097 TLS_DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384
C098 TLS_RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256
C099 TLS_RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384
C09A TLS_ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256
C09B TLS_ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384
C09C TLS_RSA_WITH_AES_128_CCM
C09D TLS_RSA_WITH_AES_256_CCM
C09E TLS_DHE_RSA_WITH_AES_128_CCM
C09F TLS_DHE_RSA_WITH_AES_256_CCM
C0A0 TLS_RSA_WITH_AES_128_CCM_8
C0A1 TLS_RSA_WITH_AES_256_CCM_8
C0A2 TLS_DHE_RSA_WITH_AES_128_CCM_8
C0A3 TLS_DHE_RSA_WITH_AES_256_CCM_8
C0A4 TLS_PSK_WITH_AES_128_CCM
C0A5 TLS_PSK_WITH_AES_256_CCM
C0A6 TLS_DHE_PSK_WITH_AES_128_CCM
C0A7 TLS_DHE_PSK_WITH_AES_256_CCM
C0A8 TLS_PSK_WITH_AES_128_CCM_8
C0A9 TLS_PSK_WITH_AES_256_CCM_8
C0AA TLS_PSK_DHE_WITH_AES_128_CCM_8
C0AB TLS_PSK_DHE_WITH_AES_256_CCM_8
C0AC TLS_ECDHE_ECDSA_WITH_AES_128_CCM
C0AD TLS_ECDHE_ECDSA_WITH_AES_256_CCM
C0AE TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
C0AF TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8
CCA8 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
CCA9 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
CCAA TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
CCAB TLS_PSK_WITH_CHACHA20_POLY1305_SHA256
CCAC TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256
CCAD TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256
CCAE TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256
"""

#: Every suite k4c can offer in a hand-built ClientHello: IANA code point -> IANA name.
SUITES: dict[int, str] = {int(code, 16): name for code, name in
                          (line.split() for line in _REGISTRY.strip().splitlines())}

#: Suites an OpenSSL client never sends without credentials of their own (a pre-shared key,
#: an SRP password, a Kerberos ticket), even when its cipher list names them.
_NEEDS_CREDENTIALS = ("PSK", "SRP", "KRB5")

_MACS = ("MD5", "SHA", "SHA256", "SHA384")


def _parts(name: str) -> tuple[str, str, str]:
    """(key exchange, cipher, MAC) of an IANA name: TLS_<kx>_WITH_<cipher>[_<mac>]."""
    kx, _, rest = name[len("TLS_"):].partition("_WITH_")
    cipher, _, mac = rest.rpartition("_")
    if mac not in _MACS:
        cipher, mac = rest, ""  # CCM and CCM_8 suites name no separate MAC
    return kx, cipher, mac


def families(name: str) -> frozenset[str]:
    """The OpenSSL cipher-string families a suite belongs to, judged from its IANA name:
    aNULL, eNULL, EXPORT, LOW, RC4, DES, 3DES, MD5, IDEA, SEED, kRSA (as OpenSSL 1.0.2, the
    last release that had them all, defined them)."""
    kx, cipher, mac = _parts(name)
    export = "EXPORT" in kx
    found = set()
    if "anon" in kx:
        found.add("aNULL")
    if cipher == "NULL":
        found.add("eNULL")
    if export:
        found.add("EXPORT")
    if cipher.startswith("RC4"):
        found.add("RC4")
    if cipher.startswith(("DES_", "DES40")):
        found.add("DES")  # single DES, the 40-bit export variants included
        if not export:
            found.add("LOW")  # 56-bit, not export
    if cipher.startswith("3DES"):
        found.add("3DES")
    if cipher.startswith("IDEA"):
        found.add("IDEA")
    if cipher.startswith("SEED"):
        found.add("SEED")
    if mac == "MD5":
        found.add("MD5")
    if kx == "RSA" or kx.startswith("RSA_EXPORT"):
        found.add("kRSA")
    return frozenset(found)


#: The families :func:`families` knows.
KNOWN_FAMILIES = frozenset({"aNULL", "eNULL", "EXPORT", "LOW", "RC4", "DES", "3DES", "MD5", "IDEA", "SEED", "kRSA"})


def family_suites(family: str) -> list[int]:
    """Code points of every suite in ``family`` (KeyError for a family this module does not know)."""
    if family not in KNOWN_FAMILIES:
        raise KeyError(family)
    return [code for code, name in SUITES.items() if family in families(name)]


def needs_credentials(code: int) -> bool:
    return any(part in SUITES.get(code, "").split("_") for part in _NEEDS_CREDENTIALS)


# -- the ClientHello -----------------------------------------------------------------------

_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x0016, 0x0015, 0x0013, 0x001A, 0x001B, 0x001C)
_SIGNATURE_ALGORITHMS = (0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0401, 0x0501,
                         0x0601, 0x0402, 0x0502, 0x0602, 0x0201, 0x0203, 0x0202, 0x0101)


def _u16(n: int) -> bytes:
    return struct.pack("!H", n)


def _ext(kind: int, data: bytes) -> bytes:
    return _u16(kind) + _u16(len(data)) + data


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def client_hello(version: int, suites: list[int], server_name: str | None = None) -> bytes:
    """One TLS record holding a ClientHello for ``version`` that offers exactly ``suites``.

    TLS hellos carry server_name (for a host name), supported_groups and ec_point_formats (so
    ECDHE and ECDH suites can be chosen), signature_algorithms (TLS 1.2) and an empty
    renegotiation_info, padded past 511 bytes (some servers stall on 256-511 byte hellos).
    An SSLv3 hello carries no extensions, as SSLv3 clients sent none."""
    if not suites:
        raise ValueError("a ClientHello must offer at least one cipher suite")
    body = _u16(version) + os.urandom(32) + b"\x00" + _u16(2 * len(suites))
    body += b"".join(_u16(s) for s in suites) + b"\x01\x00"  # null compression only
    if version >= TLS1_0:
        exts = b""
        if server_name and not _is_ip(server_name):
            name = server_name.encode("idna")
            exts += _ext(0, _u16(len(name) + 3) + b"\x00" + _u16(len(name)) + name)
        groups = b"".join(_u16(g) for g in _GROUPS)
        exts += _ext(10, _u16(len(groups)) + groups)
        exts += _ext(11, b"\x03\x00\x01\x02")
        if version >= TLS1_2:
            algs = b"".join(_u16(a) for a in _SIGNATURE_ALGORITHMS)
            exts += _ext(13, _u16(len(algs)) + algs)
        exts += _ext(0xFF01, b"\x00")
        length = 4 + len(body) + 2 + len(exts)
        if 256 <= length < 512:
            exts += _ext(21, bytes(max(0, 512 - length - 4)))
        body += _u16(len(exts)) + exts
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    record_version = SSL3 if version == SSL3 else TLS1_0  # what clients put on the first record
    return b"\x16" + _u16(record_version) + _u16(len(handshake)) + handshake


# -- the server's answer -------------------------------------------------------------------

ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
          47: "illegal_parameter", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
          71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
          90: "user_canceled", 109: "missing_extension", 110: "unsupported_extension",
          112: "unrecognized_name"}
#: Alerts that mean "no suite or version in common": the server refused what was offered.
REFUSALS = {0, 40, 70, 71}


@dataclass(frozen=True)
class ServerHello:
    version: int
    suite: int


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @property
    def name(self) -> str:
        return ALERTS.get(self.description, f"alert {self.description}")


@dataclass(frozen=True)
class Closed:
    """The server closed (or reset) the connection without a word."""

    how: str


@dataclass(frozen=True)
class Garbled:
    """An answer that is no TLS handshake k4c can read: decides nothing."""

    detail: str


Reply = ServerHello | Alert | Closed | Garbled


def parse_reply(data: bytes, *, complete: bool) -> Reply | None:
    """The server's answer in ``data`` (the bytes read so far), or None while more are needed.
    ``complete``: the connection has ended, no more will come."""
    pos, handshake = 0, b""
    while len(data) - pos >= 5:
        kind, record_version, length = data[pos], struct.unpack("!H", data[pos + 1:pos + 3])[0], \
            struct.unpack("!H", data[pos + 3:pos + 5])[0]
        if kind not in (20, 21, 22, 23) or record_version >> 8 != 3:
            if pos == 0 and data[0] & 0x80:
                return Garbled("an SSLv2-format answer")
            return Garbled(f"not a TLS record (bytes {data[pos:pos + 5].hex()})")
        if length > 2 ** 14 + 2048:
            return Garbled(f"a TLS record of {length} bytes, more than TLS allows")
        if len(data) - pos - 5 < length:
            break
        fragment = data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if kind == 21:
            if len(fragment) != 2:
                return Garbled(f"an alert record of {len(fragment)} bytes")
            alert = Alert(fragment[0], fragment[1])
            if alert.level == 1 and alert.description != 0:
                continue  # a warning (e.g. unrecognized_name) before the ServerHello
            return alert
        if kind != 22:
            return Garbled(f"a record of content type {kind} before any ServerHello")
        handshake += fragment
        if len(handshake) >= 4:
            if handshake[0] != 2:
                return Garbled(f"handshake message type {handshake[0]} where a ServerHello belongs")
            size = int.from_bytes(handshake[1:4], "big")
            if len(handshake) >= 4 + size:
                return _server_hello(handshake[4:4 + size])
    if complete:
        if not data:
            return Closed("closed the connection without answering")
        return Garbled(f"the connection closed after {len(data)} bytes, mid-record")
    return None


def _server_hello(body: bytes) -> Reply:
    if len(body) < 35:
        return Garbled("a ServerHello too short to hold a version and random")
    sid = body[34]
    if len(body) < 35 + sid + 3:
        return Garbled("a ServerHello too short to hold a cipher suite")
    version = struct.unpack("!H", body[:2])[0]
    suite = struct.unpack("!H", body[35 + sid:37 + sid])[0]
    return ServerHello(version, suite)


def read_reply(sock: socket.socket) -> Reply:
    """Read the server's first answer. Timeouts propagate (socket.timeout)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(8192)
        except (ConnectionResetError, BrokenPipeError):
            return Closed("reset the connection without answering") if not data else \
                Garbled(f"the connection was reset after {len(data)} bytes, mid-record")
        data += chunk
        reply = parse_reply(data, complete=not chunk)
        if reply is not None:
            return reply
        if len(data) > MAX_REPLY:
            return Garbled(f"no complete ServerHello in the first {MAX_REPLY} bytes")


def probe(host: str, port: int, version: int, suites: list[int], *, timeout: float,
          server_name: str | None = None) -> Reply:
    """Send one ClientHello and return the server's answer; the connection is closed right after.
    OSError (refused, unreachable, timed out) propagates."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(client_hello(version, suites, server_name or host))
        except (ConnectionResetError, BrokenPipeError):
            return Closed("reset the connection before the ClientHello was sent")
        return read_reply(sock)


# -- what the answer means -----------------------------------------------------------------

class Undecided(Exception):
    """The answer says neither "accepted" nor "refused"."""


def judge(reply: Reply, version: int, suites: list[int], *, exact_version: bool) -> ServerHello | None:
    """The ServerHello if the server accepted one of ``suites`` (at ``version``, or below it when
    not ``exact_version``); None if it refused; :class:`Undecided` if the answer cannot say."""
    offered = VERSION_NAMES.get(version, hex(version))
    if isinstance(reply, ServerHello):
        got = VERSION_NAMES.get(reply.version, hex(reply.version))
        if reply.suite not in suites:
            raise Undecided(f"the server answered a {offered} ClientHello with suite 0x{reply.suite:04X}, "
                            "which was not offered")
        if reply.version > version or reply.version < SSL3:
            raise Undecided(f"the server answered a {offered} ClientHello with a {got} ServerHello")
        if exact_version and reply.version != version:
            return None  # it speaks only an older version, whose own probe says so
        return reply
    if isinstance(reply, Alert):
        if reply.description in REFUSALS:
            return None
        raise Undecided(f"the server answered a {offered} ClientHello with the alert {reply.name}, "
                        "which tells neither acceptance nor refusal")
    if isinstance(reply, Closed):
        return None
    raise Undecided(f"the server's answer to a {offered} ClientHello is unreadable: {reply.detail}")


def chunks(suites: list[int], size: int = CHUNK) -> list[list[int]]:
    return [suites[i:i + size] for i in range(0, len(suites), size)]
