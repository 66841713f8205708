/*
 * ICMP destination-unreachable (net unreachable) for packets the TUN hands us
 * whose destination no peer holds, as a router would answer (RFC 1812 4.3.2.3):
 * never in reply to an ICMP error, a non-initial fragment, or a source that is
 * not a unicast address.
 */
#include <string.h>
#include <time.h>

#include "forwarder.h"

#define ICMP_QUOTE_MAX (576 - 28) /* keep the reply within 576 bytes */

static bool is_icmp_error(uint8_t type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

size_t icmp_net_unreachable(const uint8_t *pkt, size_t len, uint32_t gateway_ip, uint8_t *out, size_t outlen) {
  if (len < 20 || (pkt[0] >> 4) != 4) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > len) return 0;
  uint16_t frag = rd16be(pkt + 6);
  if (frag & 0x1fff) return 0; /* non-initial fragment */
  uint32_t src = rd32be(pkt + 12);
  if (src == 0 || (src >> 28) == 0xe || src == 0xffffffffu || (src >> 24) == 127) return 0;
  if (pkt[9] == 1 && len >= ihl + 1 && is_icmp_error(pkt[ihl])) return 0;

  size_t quote = len < ICMP_QUOTE_MAX ? len : ICMP_QUOTE_MAX;
  size_t total = 20 + 8 + quote;
  if (total > outlen) return 0;
  memset(out, 0, 28);
  out[0] = 0x45;
  out[1] = 0xc0; /* internetwork control, as Linux sends ICMP errors */
  wr16be(out + 2, (uint16_t)total);
  out[8] = 64;
  out[9] = 1;
  wr32be(out + 12, gateway_ip);
  memcpy(out + 16, pkt + 12, 4);
  uint16_t ipc = ip_header_csum(out, 20);
  memcpy(out + 10, &ipc, 2);
  uint8_t *icmp = out + 20;
  icmp[0] = 3; /* destination unreachable */
  icmp[1] = 0; /* net unreachable */
  memcpy(icmp + 8, pkt, quote);
  uint16_t c = (uint16_t)~csum_fold(csum_partial(icmp, 8 + quote, 0));
  memcpy(icmp + 2, &c, 2);
  return total;
}

bool icmp_allowed(struct icmp_bucket *b, int rate) {
  if (rate <= 0) return false;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  long ns = now.tv_sec * 1000000000L + now.tv_nsec;
  double tokens = b->tokens + (double)(ns - b->last_ns) / 1e9 * rate;
  b->last_ns = ns;
  b->tokens = tokens > rate ? rate : tokens;
  if (b->tokens < 1) return false;
  b->tokens -= 1;
  return true;
}
