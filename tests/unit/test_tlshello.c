/*
 * test_tlshello — unit tests of the ClientHello inspector (src/tlshello.c).
 * The hello_* arrays are real ClientHellos captured on 127.0.0.1 by a
 * Python listener dumping the first bytes it received from each client.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tlshello.h"

/* openssl s_client (OpenSSL 3.0) -servername x.test -alpn h2,http/1.1: 330 bytes */
static const unsigned char hello_h13[] = {
    0x16, 0x03, 0x01, 0x01, 0x45, 0x01, 0x00, 0x01, 0x41, 0x03, 0x03, 0x79,
    0xfa, 0x3b, 0x68, 0xea, 0x33, 0xc4, 0xd9, 0x63, 0x9d, 0xd2, 0x0d, 0x38,
    0x8e, 0xa0, 0x91, 0xfd, 0x4e, 0x0f, 0x57, 0x1c, 0xfd, 0x12, 0x05, 0xbe,
    0xc8, 0xdf, 0xed, 0xb2, 0xdb, 0x1c, 0x9f, 0x20, 0xe5, 0xc2, 0xdf, 0x1b,
    0xfa, 0x74, 0x17, 0x8a, 0x1d, 0x62, 0xc0, 0xc7, 0x8c, 0x97, 0x38, 0x46,
    0x13, 0x1c, 0xd8, 0xe2, 0xaf, 0x86, 0x5f, 0x0c, 0xee, 0x61, 0xd7, 0xb7,
    0x82, 0x1a, 0xa3, 0x08, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
    0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
    0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
    0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
    0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xba,
    0x00, 0x00, 0x00, 0x0b, 0x00, 0x09, 0x00, 0x00, 0x06, 0x78, 0x2e, 0x74,
    0x65, 0x73, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00,
    0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00,
    0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01,
    0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02,
    0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00,
    0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00,
    0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08,
    0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04,
    0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04,
    0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04,
    0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01,
    0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x94, 0x5c,
    0x1f, 0x75, 0x07, 0xd2, 0x2e, 0xa9, 0xac, 0x93, 0x96, 0x94, 0xf1, 0x84,
    0xc0, 0xd3, 0xdc, 0xbc, 0x1f, 0x90, 0x41, 0x95, 0x22, 0xd1, 0xc6, 0x77,
    0x8c, 0xb1, 0xc2, 0x45, 0x1d, 0x24,
};

/* openssl s_client -tls1_2 -servername x.test -alpn h2,http/1.1: 221 bytes */
static const unsigned char hello_h12[] = {
    0x16, 0x03, 0x01, 0x00, 0xd8, 0x01, 0x00, 0x00, 0xd4, 0x03, 0x03, 0x29,
    0x79, 0x11, 0x6a, 0xcd, 0xd2, 0xcd, 0x25, 0xcc, 0x44, 0x40, 0xfc, 0x4b,
    0x66, 0x47, 0x3d, 0xd8, 0x18, 0x84, 0xe2, 0x7c, 0xce, 0x64, 0xcd, 0x95,
    0xbd, 0xc2, 0x76, 0x0c, 0x24, 0x36, 0xb6, 0x00, 0x00, 0x38, 0xc0, 0x2c,
    0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b,
    0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23,
    0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09,
    0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c,
    0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x73, 0x00, 0x00,
    0x00, 0x0b, 0x00, 0x09, 0x00, 0x00, 0x06, 0x78, 0x2e, 0x74, 0x65, 0x73,
    0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00,
    0x0c, 0x00, 0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00,
    0x18, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02,
    0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00,
    0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00,
    0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08,
    0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04,
    0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04,
    0x02, 0x05, 0x02, 0x06, 0x02,
};

/* openssl s_client -noservername (no SNI, no ALPN): 297 bytes */
static const unsigned char hello_nosni[] = {
    0x16, 0x03, 0x01, 0x01, 0x24, 0x01, 0x00, 0x01, 0x20, 0x03, 0x03, 0x20,
    0x23, 0x38, 0xf2, 0x33, 0xc8, 0x7b, 0x7e, 0x32, 0x84, 0x8f, 0xc8, 0x80,
    0x45, 0x45, 0x1a, 0x43, 0x9a, 0xbc, 0x9e, 0xab, 0xc1, 0x15, 0x56, 0x97,
    0xa3, 0x2e, 0xf0, 0x45, 0x25, 0x0e, 0xd2, 0x20, 0xb0, 0x49, 0x88, 0xa7,
    0xd3, 0x1f, 0xfb, 0x9c, 0x97, 0xb5, 0xf1, 0x25, 0xf5, 0xca, 0x62, 0x9a,
    0x68, 0xee, 0x85, 0xd2, 0x13, 0x5a, 0xe1, 0x7e, 0xa6, 0x50, 0xa1, 0x98,
    0x2e, 0xf7, 0x2f, 0x2a, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
    0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
    0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
    0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
    0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x99,
    0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
    0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23,
    0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
    0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
    0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
    0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
    0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
    0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
    0x20, 0xe6, 0x4f, 0xb6, 0x80, 0xb5, 0x9d, 0x5b, 0x53, 0x9a, 0xef, 0x23,
    0x58, 0x31, 0x15, 0xfd, 0x8e, 0xd3, 0x6a, 0xb8, 0xb2, 0xe3, 0x6c, 0x35,
    0xf5, 0x06, 0x08, 0x6a, 0xeb, 0x17, 0x4f, 0xa8, 0x1f,
};

/* openssl s_client -servername WWW.Example.COM -alpn acme-tls/1: 338 bytes */
static const unsigned char hello_upper[] = {
    0x16, 0x03, 0x01, 0x01, 0x4d, 0x01, 0x00, 0x01, 0x49, 0x03, 0x03, 0x85,
    0x6a, 0x9d, 0xf0, 0xd5, 0xd5, 0x7d, 0xe8, 0xf8, 0x04, 0x94, 0xeb, 0x7b,
    0xe5, 0x54, 0x32, 0x2d, 0x05, 0x70, 0x96, 0xbb, 0x59, 0xbb, 0xb3, 0x65,
    0x9d, 0x1d, 0xfd, 0x64, 0xb8, 0x92, 0xb5, 0x20, 0xe8, 0x56, 0x76, 0xc4,
    0x92, 0x52, 0x4d, 0xd9, 0x23, 0x6c, 0x19, 0x3e, 0xf0, 0x63, 0xb1, 0xfc,
    0x19, 0x18, 0x3a, 0xe4, 0xd5, 0x4e, 0x8e, 0xe8, 0x73, 0x9c, 0xfe, 0x2b,
    0xb8, 0xa1, 0x9a, 0x15, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
    0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
    0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
    0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
    0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc2,
    0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x00, 0x0f, 0x57, 0x57, 0x57,
    0x2e, 0x45, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x43, 0x4f, 0x4d,
    0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
    0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x0d, 0x00, 0x0b, 0x0a, 0x61, 0x63, 0x6d,
    0x65, 0x2d, 0x74, 0x6c, 0x73, 0x2f, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00,
    0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05,
    0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08,
    0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06,
    0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06,
    0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02,
    0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26,
    0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x1b, 0xed, 0x85, 0x47, 0xef, 0xb9,
    0x57, 0xb8, 0x95, 0x45, 0x61, 0xa6, 0x58, 0x02, 0x13, 0x4f, 0xb7, 0x34,
    0x80, 0x99, 0xd4, 0xcc, 0x32, 0x6a, 0xf7, 0x5d, 0x69, 0x0d, 0x2e, 0x78,
    0x91, 0x33,
};

/* Python 3.11 ssl, server_hostname Py.Example.org, ALPN h2,http/1.1,spdy/3: 517 bytes */
static const unsigned char hello_py[] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x37,
    0x80, 0xcf, 0x58, 0x63, 0x58, 0x66, 0x13, 0x95, 0xd4, 0x0e, 0x03, 0x46,
    0xe9, 0xd7, 0x34, 0x82, 0x2d, 0xe4, 0x76, 0xfc, 0x02, 0x2c, 0xa5, 0xae,
    0xce, 0xb1, 0x0d, 0x31, 0xc7, 0xd8, 0x3a, 0x20, 0x8e, 0x8f, 0x7b, 0x59,
    0x78, 0x30, 0xd6, 0x67, 0x6e, 0x33, 0x91, 0xa1, 0x24, 0xb8, 0xc8, 0xdd,
    0x60, 0x71, 0xf7, 0x78, 0x19, 0x86, 0x0e, 0x59, 0xfe, 0xe3, 0x12, 0x2b,
    0x29, 0xf4, 0x33, 0xab, 0x00, 0x24, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
    0xc0, 0x2c, 0xc0, 0x30, 0xc0, 0x2b, 0xc0, 0x2f, 0xcc, 0xa9, 0xcc, 0xa8,
    0xc0, 0x24, 0xc0, 0x28, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x9f, 0x00, 0x9e,
    0x00, 0x6b, 0x00, 0x67, 0x00, 0xff, 0x01, 0x00, 0x01, 0x8f, 0x00, 0x00,
    0x00, 0x13, 0x00, 0x11, 0x00, 0x00, 0x0e, 0x50, 0x79, 0x2e, 0x45, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x0b, 0x00,
    0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00,
    0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01,
    0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x15, 0x00, 0x13, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74,
    0x70, 0x2f, 0x31, 0x2e, 0x31, 0x06, 0x73, 0x70, 0x64, 0x79, 0x2f, 0x33,
    0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a,
    0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08,
    0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06,
    0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02,
    0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x05, 0x04, 0x03,
    0x04, 0x03, 0x03, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00,
    0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x5d, 0xf2, 0x23, 0xbd, 0xfe,
    0x1d, 0x6b, 0xfc, 0xf1, 0x33, 0x97, 0x35, 0x1c, 0x6e, 0xbe, 0x23, 0xe2,
    0x11, 0x16, 0x6b, 0x24, 0xc7, 0x35, 0x13, 0x1a, 0xc7, 0x90, 0x0c, 0x0c,
    0xed, 0x7c, 0x75, 0x00, 0x15, 0x00, 0xc6, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00,
};

/* curl https://curl.test:PORT/ (SNI curl.test, ALPN h2,http/1.1): 517 bytes */
static const unsigned char hello_curl[] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xc3,
    0x06, 0x4e, 0x58, 0x36, 0x56, 0x8b, 0x9b, 0x80, 0x6c, 0x3f, 0xfa, 0x72,
    0x78, 0x48, 0x5f, 0x3f, 0xa4, 0xf2, 0xde, 0x30, 0x34, 0xa5, 0x23, 0x8a,
    0xd8, 0x64, 0x9c, 0xfb, 0xcb, 0xbd, 0x92, 0x20, 0x52, 0x14, 0x67, 0xdd,
    0x3c, 0xb1, 0x58, 0xcc, 0x38, 0xb2, 0x08, 0xc4, 0xc0, 0xf7, 0x61, 0x8a,
    0xd1, 0xba, 0x10, 0xdd, 0x91, 0xd2, 0x20, 0xdf, 0xa0, 0x00, 0x92, 0x86,
    0x0a, 0x8b, 0x8c, 0x0d, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
    0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
    0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
    0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
    0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0x75,
    0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09, 0x63, 0x75, 0x72,
    0x6c, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00,
    0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17,
    0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x03, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68,
    0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x0d,
    0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
    0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
    0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
    0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
    0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
    0x20, 0x51, 0x16, 0xd2, 0x2b, 0x43, 0xec, 0x7e, 0xa2, 0x95, 0xcf, 0x57,
    0x2c, 0xee, 0x70, 0x44, 0xe4, 0xff, 0x5f, 0x37, 0xf8, 0xa3, 0x79, 0xdf,
    0x93, 0x01, 0x01, 0x5b, 0xeb, 0xa8, 0x7c, 0x60, 0x6a, 0x00, 0x15, 0x00,
    0xb4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00,
};

static struct th_hello th; /* result of the last parse */

/** A captured hello and what it offers. */
struct capture {
    const char *name;          /* short name for messages */
    const unsigned char *b;    /* bytes (one record) */
    size_t n;                  /* length */
    const char *sni;           /* expected SNI, NULL when none */
    const char *alpn[4];       /* expected ALPN names, NULL-terminated */
};

static const struct capture caps[] = {
    {"openssl-tls13", hello_h13, sizeof(hello_h13), "x.test",
     {"h2", "http/1.1", NULL}},
    {"openssl-tls12", hello_h12, sizeof(hello_h12), "x.test",
     {"h2", "http/1.1", NULL}},
    {"openssl-nosni", hello_nosni, sizeof(hello_nosni), NULL, {NULL}},
    {"openssl-upper", hello_upper, sizeof(hello_upper), "www.example.com",
     {"acme-tls/1", NULL}},
    {"python", hello_py, sizeof(hello_py), "py.example.org",
     {"h2", "http/1.1", "spdy/3", NULL}},
    {"curl", hello_curl, sizeof(hello_curl), "curl.test",
     {"h2", "http/1.1", NULL}},
};
#define NCAPS (sizeof(caps) / sizeof(caps[0]))

/** A byte buffer under construction. */
struct bb {
    unsigned char b[40000]; /* bytes */
    size_t n;               /* length so far */
};

static struct bb hs_buf;  /* handshake message being built */
static struct bb ext_buf; /* extensions block contents being built */
static struct bb rec_buf; /* records wrapping a handshake message */
static struct bb tmp_buf; /* scratch for extension data */

static void put8(struct bb *b, unsigned v) { b->b[b->n++] = (unsigned char)v; }
static void put16(struct bb *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v & 0xFF);
}
static void put24(struct bb *b, unsigned v)
{
    put8(b, v >> 16);
    put16(b, v & 0xFFFF);
}
static void putn(struct bb *b, const void *p, size_t n)
{
    if (n) memcpy(b->b + b->n, p, n);
    b->n += n;
}

/** Appends an extension to ext_buf. */
static void ext(unsigned type, const void *data, size_t n)
{
    put16(&ext_buf, type);
    put16(&ext_buf, (unsigned)n);
    putn(&ext_buf, data, n);
}

/** Appends a server_name extension holding one host_name. */
static void ext_sni(const char *name, size_t n)
{
    tmp_buf.n = 0;
    put16(&tmp_buf, (unsigned)(n + 3));
    put8(&tmp_buf, 0);
    put16(&tmp_buf, (unsigned)n);
    putn(&tmp_buf, name, n);
    ext(0, tmp_buf.b, tmp_buf.n);
}

/** Appends an ALPN extension with the NULL-terminated names. */
static void ext_alpn(const char *const *names)
{
    size_t total = 0;

    for (int i = 0; names[i]; i++) total += 1 + strlen(names[i]);
    tmp_buf.n = 0;
    put16(&tmp_buf, (unsigned)total);
    for (int i = 0; names[i]; i++) {
        put8(&tmp_buf, (unsigned)strlen(names[i]));
        putn(&tmp_buf, names[i], strlen(names[i]));
    }
    ext(16, tmp_buf.b, tmp_buf.n);
}

/** Options of a synthetic hello. */
struct hopt {
    unsigned version;  /* legacy_version */
    size_t sid;        /* session id length written (bytes follow) */
    size_t cs;         /* cipher_suites length written */
    size_t comp;       /* compression methods length written */
    int no_ext;        /* 1: no extensions block at all */
    int ext_delta;     /* added to the extensions block length */
};

static const struct hopt std_opt = {0x0303, 32, 4, 1, 0, 0};

/** Builds the handshake message in hs_buf from opt and ext_buf. */
static void mk_hello(const struct hopt *o)
{
    hs_buf.n = 0;
    put8(&hs_buf, 1);
    put24(&hs_buf, 0); /* patched below */
    put16(&hs_buf, o->version);
    for (int i = 0; i < 32; i++) put8(&hs_buf, (unsigned)i);
    put8(&hs_buf, (unsigned)o->sid);
    for (size_t i = 0; i < o->sid; i++) put8(&hs_buf, 0xAA);
    put16(&hs_buf, (unsigned)o->cs);
    for (size_t i = 0; i < o->cs; i++) put8(&hs_buf, i % 2 ? 0x01 : 0x13);
    put8(&hs_buf, (unsigned)o->comp);
    for (size_t i = 0; i < o->comp; i++) put8(&hs_buf, 0);
    if (!o->no_ext) {
        put16(&hs_buf, (unsigned)((int)ext_buf.n + o->ext_delta));
        putn(&hs_buf, ext_buf.b, ext_buf.n);
    }
    hs_buf.b[1] = (unsigned char)((hs_buf.n - 4) >> 16);
    hs_buf.b[2] = (unsigned char)((hs_buf.n - 4) >> 8);
    hs_buf.b[3] = (unsigned char)(hs_buf.n - 4);
}

/**
 * Wraps hs[0..n) into records in rec_buf: chunk sizes from chunks (the
 * last one repeated), record version 0x0301.
 */
static void wrap(const unsigned char *hs, size_t n, const size_t *chunks,
                 size_t nchunks)
{
    size_t off = 0, k = 0;

    rec_buf.n = 0;
    while (off < n) {
        size_t c = chunks[k < nchunks ? k : nchunks - 1];

        if (c > n - off) c = n - off;
        put8(&rec_buf, 0x16);
        put16(&rec_buf, 0x0301);
        put16(&rec_buf, (unsigned)c);
        putn(&rec_buf, hs + off, c);
        off += c;
        k++;
    }
}

/** Wraps hs_buf into one record (two if over 2^14) and parses it. */
static int parse_hs(void)
{
    static const size_t max[] = {16384};

    wrap(hs_buf.b, hs_buf.n, max, 1);
    return th_parse(rec_buf.b, rec_buf.n, &th);
}

/** Builds a standard hello around ext_buf and parses it. */
static int parse_std(void)
{
    mk_hello(&std_opt);
    return parse_hs();
}

/** 1 if every strict prefix of b[0..n) gives 0. */
static int prefixes_need_more(const unsigned char *b, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct th_hello t;

        if (th_parse(b, k, &t) != 0) {
            printf("# prefix %zu of %zu did not return 0\n", k, n);
            return 0;
        }
    }
    return 1;
}

/** 1 if th holds what capture c offers. */
static int offers(const struct capture *c)
{
    size_t na = 0;

    while (c->alpn[na]) na++;
    if (c->sni ? !th.has_sni || strcmp(th.sni, c->sni) != 0
               : th.has_sni || th.sni[0] != '\0')
        return 0;
    if (th.nalpn != na || th.nalpn_offered != na || th.has_alpn != (na > 0))
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(th_alpn(&th, i), c->alpn[i]) != 0 ||
            th.alpn_len[i] != strlen(c->alpn[i]))
            return 0;
    return th.version == 0x0303;
}

/** Offsets of interesting fields in a one-record capture. */
struct offs {
    size_t sid;        /* legacy_session_id length byte */
    size_t cs;         /* cipher_suites length (2 bytes) */
    size_t comp;       /* compression_methods length byte */
    size_t exts;       /* extensions block length (2 bytes) */
    size_t ext_at[32]; /* offset of each extension's type */
    unsigned ext_type[32]; /* and its type */
    size_t next;       /* extensions found */
};

/** Test-side walk of a one-record hello (trusted input). */
static void walk(const unsigned char *b, size_t n, struct offs *o)
{
    size_t p = 5 + 4 + 2 + 32;

    o->sid = p;
    p += 1 + b[p];
    o->cs = p;
    p += 2 + ((size_t)b[p] << 8 | b[p + 1]);
    o->comp = p;
    p += 1 + b[p];
    o->exts = p;
    p += 2;
    o->next = 0;
    while (p < n && o->next < 32) {
        o->ext_at[o->next] = p;
        o->ext_type[o->next] = (unsigned)b[p] << 8 | b[p + 1];
        o->next++;
        p += 4 + ((size_t)b[p + 2] << 8 | b[p + 3]);
    }
}

/** Index of extension type t in o, or -1. */
static int ext_index(const struct offs *o, unsigned t)
{
    for (size_t i = 0; i < o->next; i++)
        if (o->ext_type[i] == t) return (int)i;
    return -1;
}

/** Adds d to the big-endian 16-bit field at b[at]. */
static void add16(unsigned char *b, size_t at, int d)
{
    unsigned v = ((unsigned)b[at] << 8 | b[at + 1]) + (unsigned)d;

    b[at] = (unsigned char)(v >> 8);
    b[at + 1] = (unsigned char)v;
}

static void test_captures(void)
{
    static unsigned char m[2048];

    for (size_t i = 0; i < NCAPS; i++) {
        const struct capture *c = &caps[i];
        struct offs o;
        int r, all;

        ok(th_parse(c->b, c->n, &th) == 1, "%s: parsed", c->name);
        ok(offers(c), "%s: SNI, ALPN, version as captured", c->name);
        ok(th.hello_bytes == c->n, "%s: hello_bytes %zu", c->name, c->n);
        ok(prefixes_need_more(c->b, c->n), "%s: every prefix (%zu) gives 0",
           c->name, c->n);

        /* followed by other bytes: still the same hello */
        memcpy(m, c->b, c->n);
        memcpy(m + c->n, "\x17\x03\x03\x00\x05hello GET / HTTP/1.1", 25);
        ok(th_parse(m, c->n + 25, &th) == 1 && offers(c) &&
               th.hello_bytes == c->n,
           "%s: bytes after the hello are not looked at", c->name);

        /* split over two records at every point */
        all = 1;
        for (size_t at = 1; at < c->n - 5; at++) {
            size_t ch[2] = {at, c->n};

            wrap(c->b + 5, c->n - 5, ch, 2);
            if (th_parse(rec_buf.b, rec_buf.n, &th) != 1 || !offers(c) ||
                th.hello_bytes != c->n + 5) {
                printf("# split at %zu failed\n", at);
                all = 0;
            }
        }
        ok(all, "%s: split over two records at each of %zu points", c->name,
           c->n - 6);
        {
            size_t ch[2] = {(c->n - 5) / 2, c->n};

            wrap(c->b + 5, c->n - 5, ch, 2);
            ok(prefixes_need_more(rec_buf.b, rec_buf.n),
               "%s: two-record form, every prefix gives 0", c->name);
        }

        /* corrupted lengths */
        walk(c->b, c->n, &o);
        memcpy(m, c->b, c->n);
        add16(m, 7, 1); /* handshake length + 1 (low 16 bits) */
        ok(th_parse(m, c->n, &th) == 0,
           "%s: handshake length +1: waits for a next record", c->name);
        m[c->n] = 0x17;
        ok(th_parse(m, c->n + 1, &th) == -1,
           "%s: handshake length +1 then non-handshake record: -1", c->name);
        add16(m, 7, -2);
        ok(th_parse(m, c->n, &th) == -1,
           "%s: handshake length -1: record has bytes past it", c->name);
        memcpy(m, c->b, c->n);
        add16(m, 3, 1);
        ok(th_parse(m, c->n, &th) == -1,
           "%s: record length +1: a byte past the hello: -1", c->name);
        add16(m, 7, 1);
        ok(th_parse(m, c->n, &th) == 0,
           "%s: record and handshake length +1: waits (0)", c->name);
        m[c->n] = 0;
        ok(th_parse(m, c->n + 1, &th) == -1,
           "%s: ... then the extra byte breaks the extensions: -1", c->name);
        memcpy(m, c->b, c->n);
        add16(m, 3, -1);
        add16(m, 7, -1);
        ok(th_parse(m, c->n - 1, &th) == -1,
           "%s: last byte dropped, lengths fixed: -1", c->name);
        memcpy(m, c->b, c->n);
        m[o.sid] = 33;
        ok(th_parse(m, c->n, &th) == -1, "%s: session id 33: -1", c->name);
        memcpy(m, c->b, c->n);
        add16(m, o.cs, 1);
        ok(th_parse(m, c->n, &th) == -1, "%s: cipher_suites +1: -1",
           c->name);
        memcpy(m, c->b, c->n);
        add16(m, o.cs, -1);
        ok(th_parse(m, c->n, &th) == -1, "%s: cipher_suites -1: -1",
           c->name);
        memcpy(m, c->b, c->n);
        m[o.comp] = 0;
        ok(th_parse(m, c->n, &th) == -1, "%s: compression 0: -1", c->name);
        memcpy(m, c->b, c->n);
        add16(m, o.exts, 1);
        ok(th_parse(m, c->n, &th) == -1, "%s: extensions +1: -1", c->name);
        memcpy(m, c->b, c->n);
        add16(m, o.exts, -1);
        ok(th_parse(m, c->n, &th) == -1, "%s: extensions -1: -1", c->name);
        memcpy(m, c->b, c->n);
        add16(m, o.ext_at[0] + 2, 1);
        ok(th_parse(m, c->n, &th) == -1, "%s: first extension +1: -1",
           c->name);
        memcpy(m, c->b, c->n);
        add16(m, o.ext_at[o.next - 1] + 2, 1);
        ok(th_parse(m, c->n, &th) == -1, "%s: last extension +1: -1",
           c->name);
        memcpy(m, c->b, c->n);
        m[9] = 0x02;
        ok(th_parse(m, c->n, &th) == -1, "%s: legacy_version 0x0203: -1",
           c->name);
        memcpy(m, c->b, c->n);
        m[5] = 2;
        ok(th_parse(m, c->n, &th) == -1 && th_parse(m, 6, &th) == -1,
           "%s: handshake type 2: -1 (at 6 bytes already)", c->name);
        memcpy(m, c->b, c->n);
        m[0] = 0x17;
        ok(th_parse(m, c->n, &th) == -1, "%s: record type 0x17: -1",
           c->name);
        memcpy(m, c->b, c->n);
        m[1] = 2;
        ok(th_parse(m, c->n, &th) == -1, "%s: record version 2.x: -1",
           c->name);
        m[1] = 3;
        m[2] = 0;
        ok(th_parse(m, c->n, &th) == 1, "%s: record version 3.0: 1", c->name);
        m[2] = 4;
        ok(th_parse(m, c->n, &th) == 1, "%s: record version 3.4: 1", c->name);

        /* extension-level corruptions */
        r = ext_index(&o, 22);
        if (r >= 0 && ext_index(&o, 23) >= 0) {
            memcpy(m, c->b, c->n);
            m[o.ext_at[r] + 1] = 23;
            ok(th_parse(m, c->n, &th) == -1,
               "%s: duplicate extension (22 -> 23): -1", c->name);
            m[o.ext_at[r]] = 0x12;
            ok(th_parse(m, c->n, &th) == 1,
               "%s: (22 -> 0x1217, unknown): still 1", c->name);
        }
        r = ext_index(&o, 0);
        if (r >= 0) {
            size_t e = o.ext_at[r], nl = (size_t)c->b[e + 7] << 8 | c->b[e + 8];

            memcpy(m, c->b, c->n);
            add16(m, e + 2, -1);
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI ext len -1: -1",
               c->name);
            memcpy(m, c->b, c->n);
            add16(m, e + 4, 1);
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI list +1: -1", c->name);
            memcpy(m, c->b, c->n);
            add16(m, e + 4, -1);
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI list -1: -1", c->name);
            memcpy(m, c->b, c->n);
            add16(m, e + 7, 1);
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI name +1: -1", c->name);
            memcpy(m, c->b, c->n);
            add16(m, e + 7, -1);
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI name -1: -1", c->name);
            memcpy(m, c->b, c->n);
            m[e + 9] = ' ';
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI with a space: -1",
               c->name);
            m[e + 9] = 0;
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI with a NUL: -1",
               c->name);
            m[e + 9] = 0xC3;
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI with 0xC3: -1",
               c->name);
            m[e + 8 + nl] = '.';
            m[e + 9] = 'q';
            ok(th_parse(m, c->n, &th) == -1, "%s: SNI trailing dot: -1",
               c->name);
            memcpy(m, c->b, c->n);
            m[e + 6] = 1; /* name_type 1: skipped */
            ok(th_parse(m, c->n, &th) == 1 && !th.has_sni && th.sni[0] == 0,
               "%s: SNI of name_type 1: skipped, no SNI", c->name);
        }
        r = ext_index(&o, 16);
        if (r >= 0) {
            size_t e = o.ext_at[r];

            memcpy(m, c->b, c->n);
            add16(m, e + 4, 1);
            ok(th_parse(m, c->n, &th) == -1, "%s: ALPN list +1: -1",
               c->name);
            memcpy(m, c->b, c->n);
            add16(m, e + 4, -1);
            ok(th_parse(m, c->n, &th) == -1, "%s: ALPN list -1: -1",
               c->name);
            memcpy(m, c->b, c->n);
            m[e + 6] = 0;
            ok(th_parse(m, c->n, &th) == -1, "%s: ALPN empty name: -1",
               c->name);
            memcpy(m, c->b, c->n);
            m[e + 6]++;
            ok(th_parse(m, c->n, &th) == -1, "%s: ALPN name +1: -1", c->name);
        }

        /* any single byte changed to any value: no crash, sane output */
        all = 1;
        for (size_t p = 0; p < c->n; p++) {
            memcpy(m, c->b, c->n);
            for (unsigned v = 0; v < 256; v++) {
                m[p] = (unsigned char)v;
                r = th_parse(m, c->n, &th);
                if (r < -1 || r > 1 ||
                    (r == 1 && (th.nalpn > TH_MAX_ALPN ||
                                strlen(th.sni) > 253 ||
                                th.has_sni != (th.sni[0] != 0) ||
                                th.hello_bytes > c->n)) ||
                    (r != 1 && (th.has_sni || th.nalpn || th.version))) {
                    printf("# byte %zu = 0x%02x: r=%d\n", p, v, r);
                    all = 0;
                }
            }
        }
        ok(all, "%s: %zu single-byte mutations give sane results", c->name,
           c->n * 256);
    }
}

static void test_not_tls(void)
{
    static const struct {
        const char *b; /* bytes */
        size_t n;      /* length */
        int want;      /* expected result */
        const char *what; /* description */
    } v[] = {
        {"", 0, 0, "empty"},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, -1, "HTTP/1.1 request"},
        {"G", 1, -1, "one byte G"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32, -1, "PROXY v1 line"},
        {"\r\n\r\n\0\r\nQUIT\n", 12, -1, "PROXY v2 signature"},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, -1, "HTTP/2 preface"},
        {"SSH-2.0-OpenSSH_9.6\r\n", 21, -1, "SSH banner"},
        {"\x80\x2e\x01\x03\x01\x00\x15", 7, -1, "SSLv2 compatible hello"},
        {"\x15\x03\x01\x00\x02\x02\x28", 7, -1, "alert record"},
        {"\x14\x03\x03\x00\x01\x01", 6, -1, "change_cipher_spec record"},
        {"\x17\x03\x03\x00\x01\x00", 6, -1, "application data record"},
        {"\x16", 1, 0, "0x16 alone: 0"},
        {"\x16\x03", 2, 0, "0x16 0x03: 0"},
        {"\x16\x02", 2, -1, "record version 2.x"},
        {"\x16\x04", 2, -1, "record version 4.x"},
        {"\x16\xfe\xfd", 3, -1, "DTLS 1.2 version"},
        {"\x16\x03\x01\x00", 4, 0, "partial record header"},
        {"\x16\x03\x01\x00\x00", 5, -1, "zero-length record"},
        {"\x16\x03\x01\x40\x01", 5, -1, "record of 16385 bytes"},
        {"\x16\x03\x01\xff\xff", 5, -1, "record of 65535 bytes"},
        {"\x16\x03\x01\x40\x00\x01", 6, 0, "record of 16384: fine so far"},
        {"\x16\x03\x01\x00\x04\x02", 6, -1, "server_hello type"},
        {"\x16\x03\x01\x00\x04\x00", 6, -1, "hello_request type"},
        {"\x16\x03\x01\x00\x04\x01\x00\x40\x01", 9, -1, "body of 16385"},
        {"\x16\x03\x01\x00\x04\x01\x01\x00\x00", 9, -1, "body of 65536"},
        {"\x16\x03\x01\x00\x04\x01\x00\x40\x00", 9, 0,
         "body of 16384, record of 4: next record awaited"},
        {"\x16\x03\x01\x00\x05\x01\x00\x00\x01", 9, 0,
         "record longer than the hello, not yet complete: 0"},
        {"\x16\x03\x01\x00\x05\x01\x00\x00\x00\x00", 10, -1,
         "record carries a byte past an empty hello"},
        {"\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9, -1,
         "empty hello body"},
        {"\x16\x03\x01\x00\x01\x01\x16\x03\x01\x00\x03\x00\x00\x00", 14, -1,
         "empty hello body over two records"},
        {"\x16\x03\x01\x00\x01\x01\x15", 7, -1,
         "alert after first fragment"},
        {"\x16\x03\x01\x00\x01\x01\x16\x01", 8, -1,
         "second record version 1.x"},
    };

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int r = th_parse(v[i].b, v[i].n, &th);

        ok(r == v[i].want, "not TLS / early: %s -> %d (got %d)", v[i].what,
           v[i].want, r);
    }
}

static void test_records(void)
{
    const struct capture *c = &caps[0];
    const unsigned char *hs = c->b + 5;
    size_t hn = c->n - 5;
    static unsigned char m[4096];

    {
        size_t ch[1] = {1};

        /* one byte per record: many records */
        wrap(hs, 15, ch, 1);
        ok(th_parse(rec_buf.b, rec_buf.n, &th) == 0,
           "15 one-byte records: valid so far");
        wrap(hs, 17, ch, 1);
        ok(th_parse(rec_buf.b, rec_buf.n, &th) == -1,
           "17th record refused (TH_MAX_RECORDS 16)");
    }
    {
        size_t ch[16];
        size_t per = hn / 16 + 1;

        for (int i = 0; i < 16; i++) ch[i] = per;
        wrap(hs, hn, ch, 16);
        ok(rec_buf.n == c->n + 15 * 5 &&
               th_parse(rec_buf.b, rec_buf.n, &th) == 1 && offers(c) &&
               th.hello_bytes == rec_buf.n,
           "hello over exactly 16 records: 1");
        ok(prefixes_need_more(rec_buf.b, rec_buf.n),
           "16-record form: every prefix gives 0");
    }
    {
        size_t ch[3] = {1, 3, hn};

        wrap(hs, hn, ch, 3);
        ok(th_parse(rec_buf.b, rec_buf.n, &th) == 1 && offers(c),
           "handshake header split 1+3 over records: 1");
    }
    {
        size_t ch[2] = {100, hn};

        wrap(hs, hn, ch, 2);
        memcpy(m, rec_buf.b, rec_buf.n);
        m[105] = 0x15;
        ok(th_parse(m, rec_buf.n, &th) == -1, "second record is an alert");
        m[105] = 0x16;
        m[106] = 0x02;
        ok(th_parse(m, rec_buf.n, &th) == -1,
           "second record version 2.x");
        m[106] = 0x03;
        m[108] = 0;
        m[109] = 0;
        ok(th_parse(m, rec_buf.n, &th) == -1, "second record empty");
        memcpy(m, rec_buf.b, rec_buf.n);
        add16(m, 108, 1);
        m[rec_buf.n] = 0x16;
        ok(th_parse(m, rec_buf.n + 1, &th) == -1,
           "second record one byte longer than the hello");
        ok(th_parse(m, rec_buf.n, &th) == -1,
           "... refused even before that byte arrives");
    }
    {
        /* a hello followed by a second handshake message in its record */
        memcpy(m, c->b, c->n);
        memcpy(m + c->n, "\x0b\x00\x00\x00", 4);
        add16(m, 3, 4);
        ok(th_parse(m, c->n + 4, &th) == -1,
           "extra handshake message in the hello's record: -1");
    }
}

static void test_synthetic(void)
{
    struct hopt o;
    char name[400];
    static const char *const two[] = {"h2", "http/1.1", NULL};

    /* minimal hellos */
    ext_buf.n = 0;
    o = std_opt;
    o.no_ext = 1;
    mk_hello(&o);
    ok(parse_hs() == 1 && !th.has_sni && !th.has_alpn && th.nalpn == 0 &&
           th.version == 0x0303,
       "hello without extensions block: 1");
    ok(prefixes_need_more(rec_buf.b, rec_buf.n),
       "hello without extensions: every prefix 0");
    ok(parse_std() == 1 && !th.has_sni, "empty extensions block: 1");
    o = std_opt;
    o.version = 0x0301;
    o.sid = 0;
    o.cs = 2;
    mk_hello(&o);
    ok(parse_hs() == 1 && th.version == 0x0301,
       "TLS 1.0 hello, no session id, one suite: 1");
    o = std_opt;
    o.version = 0x0300;
    mk_hello(&o);
    ok(parse_hs() == 1 && th.version == 0x0300, "legacy_version 3.0: 1");
    o.version = 0x0403;
    mk_hello(&o);
    ok(parse_hs() == -1, "legacy_version 0x0403: -1");
    o = std_opt;
    o.sid = 33;
    mk_hello(&o);
    ok(parse_hs() == -1, "session id of 33 bytes: -1");
    o = std_opt;
    o.cs = 0;
    mk_hello(&o);
    ok(parse_hs() == -1, "no cipher suites: -1");
    o.cs = 3;
    mk_hello(&o);
    ok(parse_hs() == -1, "odd cipher_suites length: -1");
    o = std_opt;
    o.comp = 0;
    mk_hello(&o);
    ok(parse_hs() == -1, "no compression methods: -1");
    o = std_opt;
    o.comp = 2;
    mk_hello(&o);
    ok(parse_hs() == 1, "two compression methods: 1 (not our business)");
    o = std_opt;
    o.no_ext = 1;
    mk_hello(&o);
    put8(&hs_buf, 0);
    hs_buf.b[3]++;
    ok(parse_hs() == -1, "one stray byte after compression methods: -1");

    /* extensions framing */
    ext_buf.n = 0;
    ext(0xFF01, "\x00", 1);
    o = std_opt;
    o.ext_delta = 1;
    mk_hello(&o);
    ok(parse_hs() == -1, "extensions length +1: -1");
    o.ext_delta = -1;
    mk_hello(&o);
    ok(parse_hs() == -1, "extensions length -1: -1");
    ext_buf.n = 0;
    ext(10, "\x00\x02\x00\x1d", 4);
    put8(&ext_buf, 0x00);
    put8(&ext_buf, 0x0b);
    put8(&ext_buf, 0x00);
    ok(parse_std() == -1, "extension header cut: -1");
    ext_buf.n = 0;
    ext(10, "\x00\x02\x00\x1d", 4);
    ext(10, "\x00\x02\x00\x17", 4);
    ok(parse_std() == -1, "duplicate supported_groups: -1");
    ext_buf.n = 0;
    ext_sni("a.test", 6);
    ext_sni("a.test", 6);
    ok(parse_std() == -1, "duplicate server_name: -1");
    ext_buf.n = 0;
    ext_alpn(two);
    ext_alpn(two);
    ok(parse_std() == -1, "duplicate ALPN: -1");
    ext_buf.n = 0;
    ext_sni("a.test", 6);
    ext(41, "\x00\x01\x02", 3);
    ok(parse_std() == 1 && th.has_sni, "pre_shared_key last: 1");
    ext_buf.n = 0;
    ext(41, "\x00\x01\x02", 3);
    ext_sni("a.test", 6);
    ok(parse_std() == -1, "pre_shared_key not last: -1");
    ext_buf.n = 0;
    for (unsigned t = 0; t < TH_MAX_EXT; t++) ext(0x1000 + t, NULL, 0);
    ok(parse_std() == 1, "%d extensions: 1", TH_MAX_EXT);
    ext(0x2000, NULL, 0);
    ok(parse_std() == -1, "%d extensions: -1", TH_MAX_EXT + 1);
    ext_buf.n = 0;
    ext(0x0A0A, NULL, 0); /* GREASE */
    ext_sni("grease.test", 11);
    ext(0x1A1A, "\x00", 1);
    ok(parse_std() == 1 && strcmp(th.sni, "grease.test") == 0,
       "GREASE extensions skipped: 1");

    /* server names accepted */
    {
        static const char *good[][2] = {
            {"a", "a"},
            {"a.b", "a.b"},
            {"WWW.EXAMPLE.COM", "www.example.com"},
            {"xn--bcher-kva.example", "xn--bcher-kva.example"},
            {"_acme-challenge.x.test", "_acme-challenge.x.test"},
            {"a-b.c_d.0-9", "a-b.c_d.0-9"},
            {"-leading-hyphen.test", "-leading-hyphen.test"},
            {"127.0.0.1", "127.0.0.1"},
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            ext_buf.n = 0;
            ext_sni(good[i][0], strlen(good[i][0]));
            ok(parse_std() == 1 && th.has_sni &&
                   strcmp(th.sni, good[i][1]) == 0,
               "SNI \"%s\" accepted as \"%s\"", good[i][0], good[i][1]);
        }
    }
    /* label of 63, name of 253 */
    memset(name, 'a', sizeof(name));
    ext_buf.n = 0;
    ext_sni(name, 63);
    ok(parse_std() == 1 && strlen(th.sni) == 63, "SNI label of 63: 1");
    ext_buf.n = 0;
    ext_sni(name, 64);
    ok(parse_std() == -1, "SNI label of 64: -1");
    for (int i = 63; i < 253; i += 64) name[i] = '.';
    ext_buf.n = 0;
    ext_sni(name, 253);
    ok(parse_std() == 1 && strlen(th.sni) == 253 && th.sni[63] == '.',
       "SNI of 253 bytes: 1");
    ext_buf.n = 0;
    name[253] = 'a';
    ext_sni(name, 254);
    ok(parse_std() == -1, "SNI of 254 bytes: -1");
    ext_buf.n = 0;
    ext_sni(name, 300);
    ok(parse_std() == -1, "SNI of 300 bytes: -1");
    /* server names refused */
    {
        static const char *bad[] = {
            "a.b.", ".", ".a", "a..b", "a b", "a*b", "*.a.test", "a:443",
            "[::1]", "a/b", "a\\b", "\xc3\xa9.test", "a\x7f", "a\tb",
            "a%2e", "a@b", "a,b", "a!b",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            ext_buf.n = 0;
            ext_sni(bad[i], strlen(bad[i]));
            ok(parse_std() == -1 && !th.has_sni && th.sni[0] == 0,
               "SNI bad %zu refused", i);
        }
    }
    ext_buf.n = 0;
    ext_sni("a\0b", 3);
    ok(parse_std() == -1, "SNI with NUL: -1");
    ext_buf.n = 0;
    ext_sni("", 0);
    ok(parse_std() == -1, "SNI empty name: -1");
    ext_buf.n = 0;
    ext(0, NULL, 0);
    ok(parse_std() == -1, "server_name extension empty: -1");
    ext_buf.n = 0;
    ext(0, "\x00\x00", 2);
    ok(parse_std() == -1, "server_name list empty: -1");
    ext_buf.n = 0;
    ext(0, "\x00\x04\x00\x00\x01x", 6);
    ok(parse_std() == 1 && strcmp(th.sni, "x") == 0, "server_name \"x\": 1");
    ext_buf.n = 0;
    ext(0, "\x00\x04\x00\x00\x01xZ", 7);
    ok(parse_std() == -1, "server_name extension with a trailing byte: -1");
    ext_buf.n = 0;
    ext(0, "\x00\x08\x00\x00\x01x\x00\x00\x01y", 10);
    ok(parse_std() == -1, "two host_names: -1");
    ext_buf.n = 0;
    ext(0, "\x00\x09\x07\x00\x02zz\x00\x00\x01y", 11);
    ok(parse_std() == 1 && strcmp(th.sni, "y") == 0,
       "name_type 7 skipped, then host_name: 1");
    ext_buf.n = 0;
    ext(0, "\x00\x05\x07\x00\x02zz", 7);
    ok(parse_std() == 1 && !th.has_sni, "only name_type 7: no SNI");
    ext_buf.n = 0;
    ext(0, "\x00\x03\x07\x00\x00", 5);
    ok(parse_std() == -1, "empty name of another type: -1");
    ext_buf.n = 0;
    ext(0, "\x00\x04\x00\x00\x02x", 6);
    ok(parse_std() == -1, "host_name length past the list: -1");

    /* ALPN */
    {
        static const char *const many[] = {
            "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8",
            "p9", "pa", "pb", "pc", "pd", "pe", "pf", "pg", NULL};
        static char big[5][256];
        const char *bigs[7];

        ext_buf.n = 0;
        ext_alpn(many);
        ok(parse_std() == 1 && th.has_alpn && th.nalpn == TH_MAX_ALPN &&
               th.nalpn_offered == 17 &&
               strcmp(th_alpn(&th, 15), "pf") == 0 &&
               th_alpn(&th, 16) == NULL,
           "17 ALPN names: 16 kept, 17 offered");
        for (int i = 0; i < 5; i++) {
            memset(big[i], 'A' + i, 255);
            big[i][255] = '\0';
            bigs[i] = big[i];
        }
        bigs[5] = "h2";
        bigs[6] = NULL;
        ext_buf.n = 0;
        ext_alpn(bigs);
        ok(parse_std() == 1 && th.nalpn == 4 && th.nalpn_offered == 6 &&
               strlen(th_alpn(&th, 3)) == 255 && th_alpn(&th, 3)[0] == 'D' &&
               th.alpn_len[3] == 255,
           "ALPN names over TH_ALPN_BUF: counted, not kept");
    }
    ext_buf.n = 0;
    ext(16, "\x00\x04\x03" "a\0b", 6);
    ok(parse_std() == 1 && th.nalpn == 1 && th.alpn_len[0] == 3 &&
           memcmp(th_alpn(&th, 0), "a\0b", 4) == 0,
       "ALPN name with a NUL: kept with its length");
    ext_buf.n = 0;
    ext(16, NULL, 0);
    ok(parse_std() == -1, "ALPN extension empty: -1");
    ext_buf.n = 0;
    ext(16, "\x00\x00", 2);
    ok(parse_std() == -1, "ALPN list empty: -1");
    ext_buf.n = 0;
    ext(16, "\x00\x03\x02h2\x00", 6);
    ok(parse_std() == -1, "ALPN trailing empty name: -1");
    ext_buf.n = 0;
    ext(16, "\x00\x04\x02h2", 5);
    ok(parse_std() == -1, "ALPN list longer than the extension: -1");
    ext_buf.n = 0;
    ext(16, "\x00\x02\x02h2", 5);
    ok(parse_std() == -1, "ALPN list shorter than the extension: -1");
    ext_buf.n = 0;
    ext(16, "\x00\x03\x03h2", 5);
    ok(parse_std() == -1, "ALPN name past the list: -1");
    ok(th_alpn(&th, 0) == NULL, "th_alpn out of range: NULL");

    /* size limits */
    {
        static unsigned char pad[20000];
        size_t base;

        ext_buf.n = 0;
        ext_sni("big.test", 8);
        mk_hello(&std_opt);
        base = hs_buf.n - 4; /* body without padding */
        ext(21, pad, TH_MAX_HELLO - base - 4);
        mk_hello(&std_opt);
        ok(hs_buf.n - 4 == TH_MAX_HELLO && parse_hs() == 1 &&
               strcmp(th.sni, "big.test") == 0 &&
               th.hello_bytes == hs_buf.n + 10,
           "hello body of TH_MAX_HELLO over two full records: 1");
        ok(rec_buf.n <= TH_MAX_PEEK, "it fits in TH_MAX_PEEK");
        ext_buf.n -= TH_MAX_HELLO - base - 4 + 4;
        ext(21, pad, TH_MAX_HELLO - base - 4 + 1);
        mk_hello(&std_opt);
        ok(parse_hs() == -1 && th_parse(rec_buf.b, 9, &th) == -1,
           "hello body of TH_MAX_HELLO+1: -1 from the first 9 bytes");
    }

    /* random inputs */
    {
        static unsigned char g[3000];
        int good = 1;

        srand(99);
        for (int it = 0; it < 20000; it++) {
            size_t n = (size_t)(rand() % (int)sizeof(g));
            int r;

            for (size_t i = 0; i < n; i++) g[i] = (unsigned char)rand();
            if (n >= 9 && it % 2) {
                memcpy(g, "\x16\x03\x01", 3);
                g[3] = (unsigned char)((n - 5) >> 8);
                g[4] = (unsigned char)(n - 5);
                g[5] = 1;
                g[6] = 0;
                g[7] = (unsigned char)((n - 9) >> 8);
                g[8] = (unsigned char)(n - 9);
            }
            r = th_parse(g, n, &th);
            if (r < -1 || r > 1) good = 0;
        }
        ok(good, "20000 random inputs: result in {-1, 0, 1}");
    }
}

int main(void)
{
    test_captures();
    test_not_tls();
    test_records();
    test_synthetic();
    return tap_done();
}
