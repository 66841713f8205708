/*
 * Internet checksum (RFC 1071) helpers. Sums are accumulated over native
 * little-endian 16-bit words; the one's-complement sum is byte-order
 * independent, so the folded result is stored back with memcpy as is.
 */
#include <string.h>

#include "forwarder.h"

uint64_t csum_partial(const void *buf, size_t len, uint64_t sum) {
  const uint8_t *p = buf;
  /* 32-bit words into a 64-bit accumulator: no carry lost below 2^32 words */
  while (len >= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    memcpy(&c, p + 16, 8);
    memcpy(&d, p + 24, 8);
    sum += (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32) + (c & 0xffffffffu) + (c >> 32) +
           (d & 0xffffffffu) + (d >> 32);
    p += 32;
    len -= 32;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len) sum += *p; /* low byte on little-endian: the odd byte padded with zero */
  return sum;
}

uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* addresses as they sit in the packet (network order); len in host order */
uint64_t csum_pseudo(uint32_t saddr_be, uint32_t daddr_be, uint8_t proto, uint16_t len) {
  uint64_t sum = (uint64_t)saddr_be + daddr_be;
  uint16_t pl = (uint16_t)(((uint16_t)proto << 8)); /* bytes {0, proto} read little-endian */
  uint16_t lb = (uint16_t)((len >> 8) | (len << 8));
  return sum + pl + lb;
}

uint16_t ip_header_csum(const uint8_t *iph, size_t ihl) {
  uint64_t s = csum_partial(iph, ihl, 0);
  return (uint16_t)~csum_fold(s);
}
