/* What every fuzz target shares: libFuzzer's entry point, which
 * replay_main.c calls too, and an assertion that aborts (libFuzzer and the
 * replay both report an abort as a crash, with the input). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond)             \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)
