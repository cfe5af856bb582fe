/*
 * sha256 — SHA-256 (FIPS 180-4), written here because the project links no
 * crypto library. Used for the content hashes of incremental backup's .rp
 * reports (rp.h); streaming: init, any number of updates, final.
 *
 * Thread-safe: all state is in the caller's sha256_ctx_t.
 */
#ifndef OHB_SHA256_H
#define OHB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_BLOCK_LEN 64

typedef struct sha256_ctx {
	uint32_t h[8];                    /* chaining value */
	uint64_t total;                   /* bytes hashed so far */
	uint8_t block[SHA256_BLOCK_LEN];  /* a partial block waiting for more bytes */
	size_t fill;                      /* bytes in block */
} sha256_ctx_t;

void sha256_init(sha256_ctx_t *c);
void sha256_update(sha256_ctx_t *c, const void *data, size_t len);
/* Writes the digest; c must be re-initialised before it is used again. */
void sha256_final(sha256_ctx_t *c, uint8_t out[SHA256_DIGEST_LEN]);

/* The digest as 64 upper-case hex digits and a NUL (the .rp spelling). */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_LEN], char out[65]);

#endif
