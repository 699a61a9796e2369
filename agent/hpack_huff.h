/* The Huffman code of RFC 7541 Appendix B (agent/hpack_huff.c), shared by
 * the codec and its unit test. Symbol 256 is EOS. The code is canonical:
 * within one length, codes rise with the symbol, and the first code of
 * length L+1 is (last code of length L + 1) << 1. */
#pragma once

#include <stdint.h>

#define HPACK_HUFF_SYMS 257
#define HPACK_HUFF_EOS 256
#define HPACK_HUFF_MINLEN 5
#define HPACK_HUFF_MAXLEN 30

extern const uint32_t hpack_huff_code[HPACK_HUFF_SYMS];
extern const uint8_t hpack_huff_len[HPACK_HUFF_SYMS];
