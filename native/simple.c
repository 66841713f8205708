/*
 * The simple path, kept as flannel's udp proxy does it: one thread, poll, and
 * one packet per read()/sendto()/recvfrom()/write(). It is the baseline the
 * fast path is measured against, and what `simple: true` selects.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forwarder.h"

#define BUF_LEN 65536

static void tun_to_udp(struct forwarder *fw, struct counters *c, int tun, uint8_t *buf, uint8_t *icmp,
                       struct icmp_bucket *bucket, int slot) {
  ssize_t n = read(tun, buf, BUF_LEN);
  if (n <= 0) return;
  cnt_add(c, C_TUN_READS, 1);
  bool v6 = n >= IPV6_HDR_LEN && (buf[0] >> 4) == 6;
  if (!v6 && (n < 20 || (buf[0] >> 4) != 4)) {
    cnt_add(c, C_DROP_MALFORMED, 1);
    return;
  }
  const struct peer_table *t = fw_table_acquire(fw, slot);
  uint32_t peer_ip = 0;
  bool found;
  if (v6) {
    const struct peer6_entry *p6 = peer_route6(t, rd128be(buf + IPV6_DST_OFF));
    found = p6 != NULL;
    if (p6) peer_ip = p6->public_ip;
  } else {
    const struct peer_entry *p = peer_route(t, rd32be(buf + 16));
    found = p != NULL;
    if (p) peer_ip = p->public_ip;
  }
  fw_table_release(fw, slot);
  if (!found && v6) {
    cnt_add(c, C_DROP_NO_ROUTE, 1); /* no ICMPv6 errors (as the fast path) */
    return;
  }
  if (!found) {
    cnt_add(c, C_DROP_NO_ROUTE, 1);
    size_t il = icmp_allowed(bucket, fw->opt.icmp_rate) ? icmp_net_unreachable(buf, (size_t)n, fw->opt.gateway_ip, icmp, 1024) : 0;
    if (il) {
      if (write(tun, icmp, il) == (ssize_t)il) cnt_add(c, C_ICMP_UNREACHABLE_SENT, 1);
      else cnt_add(c, C_TUN_WRITE_ERRORS, 1);
    }
    return;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(fw->opt.port), .sin_addr.s_addr = htonl(peer_ip)};
  if (sendto(fw->udp_fd, buf, (size_t)n, 0, (struct sockaddr *)&to, sizeof to) < 0) {
    cnt_add(c, C_SEND_ERRORS, 1);
    return;
  }
  cnt_add(c, C_UDP_SENDS, 1);
  cnt_add(c, C_TX_PACKETS, 1);
  cnt_add(c, C_TX_BYTES, (uint64_t)n);
}

static void udp_to_tun(struct forwarder *fw, struct counters *c, int tun, uint8_t *buf, int slot) {
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t n = recvfrom(fw->udp_fd, buf, BUF_LEN, 0, (struct sockaddr *)&from, &fl);
  if (n < 0) return;
  cnt_add(c, C_UDP_RECVS, 1);
  const struct peer_table *t = fw_table_acquire(fw, slot);
  const struct peer_entry *s = peer_sender(t, ntohl(from.sin_addr.s_addr));
  size_t len = ipv4_valid_len(buf, (size_t)n);
  size_t len6 = len ? 0 : ipv6_valid_len(buf, (size_t)n);
  enum weft_counter drop = C_COUNT;
  if (!s) drop = C_DROP_UNKNOWN_SENDER;
  else if (len6) {
    if (!peer_sender_owns6(t, s->public_ip, rd128be(buf + IPV6_SRC_OFF))) drop = C_DROP_SPOOFED_SOURCE;
    len = len6;
  } else if (!len) drop = C_DROP_MALFORMED;
  else if (!peer_sender_owns(t, s, rd32be(buf + 12))) drop = C_DROP_SPOOFED_SOURCE;
  fw_table_release(fw, slot);
  if (drop != C_COUNT) {
    cnt_add(c, drop, 1);
    return;
  }
  cnt_add(c, C_TUN_WRITES, 1);
  if (write(tun, buf, len) != (ssize_t)len) {
    cnt_add(c, C_TUN_WRITE_ERRORS, 1);
    return;
  }
  cnt_add(c, C_RX_PACKETS, 1);
  cnt_add(c, C_RX_BYTES, len);
}

void *simple_thread(void *arg) {
  struct thread_ctx *ctx = arg;
  struct forwarder *fw = ctx->fw;
  struct counters *c = &fw->cnt[ctx->index];
  uint8_t *buf = malloc(BUF_LEN), *icmp = malloc(1024);
  struct icmp_bucket bucket = {0};
  if (!buf || !icmp) {
    fw_log(fw, "simple forwarder: out of memory, not forwarding");
    free(buf);
    free(icmp);
    return NULL;
  }
  struct pollfd p[3] = {
      {.fd = ctx->tun_fd, .events = POLLIN},
      {.fd = fw->udp_fd, .events = POLLIN},
      {.fd = fw->stop_fd, .events = POLLIN},
  };
  while (!atomic_load_explicit(&fw->stopping, memory_order_relaxed)) {
    int r = poll(p, 3, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[2].revents) break;
    if (p[0].revents & POLLIN) tun_to_udp(fw, c, ctx->tun_fd, buf, icmp, &bucket, ctx->index);
    if (p[1].revents & POLLIN) udp_to_tun(fw, c, ctx->tun_fd, buf, ctx->index);
  }
  free(buf);
  free(icmp);
  return NULL;
}
