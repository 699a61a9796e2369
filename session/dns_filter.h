/* feature.network.dns.filter as the local DNS relays apply it (dns.c):
 * which queries go to the pod's nameserver and which to the workstation's.
 * Pure (no I/O), so the unit tests and the fuzzer use it alone.
 *
 * mirrord checks the name given to getaddrinfo; the relays see DNS queries
 * instead, after the resolver has appended the search domains. So a listed
 * name N matches a query name Q when Q is N, or N + "." + one of the pod's
 * search domains (case-insensitive, trailing dots ignored). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A name in text form: at most 253 characters (RFC 1035: 255 wire bytes)
 * plus the NUL. */
#define DNS_NAME_TEXT_MAX 254

/* How many search domains resolv.conf may list (glibc's MAXDNSRCH). */
#define DNS_SEARCH_MAX 6

struct dns_filter {
	bool remote;  /* true: listed names go to the pod, the rest locally */
	bool all;     /* an entry without a name or address (":53"): every name */
	char **names; /* lowercase, without a trailing dot */
	size_t nnames;
	char *search[DNS_SEARCH_MAX]; /* the pod's search domains, as names */
	size_t nsearch;
};

/* Read the question of a DNS query: the QNAME as lowercase dotted text
 * without the trailing dot ("" for the root), the QTYPE, and the offset
 * where the question ends. Returns 0, or -EINVAL for a message that is not
 * a standard query (QR set, an opcode other than QUERY) with exactly one
 * question, a compression pointer in the question (not allowed there), a
 * name over 255 wire bytes, a label holding a dot or a byte outside
 * printable ASCII (no entry could match it), or missing bytes. */
int dns_query_question(const uint8_t *msg, size_t len, char ret_name[DNS_NAME_TEXT_MAX],
                       uint16_t *ret_qtype, size_t *ret_end);

/* Add a listed name (any case, trailing dot allowed). */
void dns_filter_add_name(struct dns_filter *f, const char *name);

/* Take the search domains from resolv.conf text: the last "search" or
 * "domain" line wins, as in glibc. */
void dns_filter_set_search(struct dns_filter *f, const char *resolv_conf);

/* The listed name that qname (as dns_query_question gives it) matches, ""
 * when f->all, or NULL when none does. */
const char *dns_filter_match(const struct dns_filter *f, const char *qname);

/* Whether qname goes to the workstation's nameservers. *ret_entry: the
 * matching entry (see dns_filter_match) or NULL. */
bool dns_filter_local(const struct dns_filter *f, const char *qname, const char **ret_entry);

/* Write a SERVFAIL answer to the query msg, whose question ends at qend
 * (dns_query_question): its header with QR, RA and rcode 2, its question,
 * no records. out holds at least qend bytes; returns qend. */
size_t dns_servfail(const uint8_t *msg, size_t qend, uint8_t *out);

/* The addresses that /etc/hosts text gives name (lowercase, as
 * dns_query_question writes it) for family (AF_INET: 4 bytes each,
 * AF_INET6: 16), at most max of them into out, in the file's order.
 * Returns how many (0: the name is there, with addresses of the other
 * family only), or -ENOENT when no line names it. Lines longer than 1 KiB
 * are skipped. */
int dns_hosts_lookup(const char *hosts, const char *name, int family, uint8_t (*out)[16],
                     size_t max);

/* An answer to the query msg, whose question ends at qend, with n
 * addresses (A: 4 bytes each, AAAA: 16, by the question's type; none:
 * NODATA): header with QR, RA and rcode 0, the question, one record per
 * address (TTL 0, the name as a pointer to the question). Returns its
 * length, or 0 when it does not fit in cap. */
size_t dns_hosts_answer(const uint8_t *msg, size_t qend, const uint8_t (*addrs)[16], size_t n,
                        uint8_t *out, size_t cap);

/* "A", "AAAA", ... or NULL for a type without a short name here. */
const char *dns_type_name(uint16_t qtype);

void dns_filter_free(struct dns_filter *f);
