/*
 * Fast path, UDP -> TUN: the other direction of a worker (worker.c).
 *
 * recvmmsg() fills a batch of buffers; with UDP_GRO each buffer may hold many
 * datagrams of one sender cut at gso_size (the last may be shorter). Every
 * datagram is validated on its own: the sender must hold a lease (be a peer's
 * public IP), the inner IPv4 header must be sane and its source must lie in
 * that sender's subnet (an inner IPv6 packet: in one of its IPv6 subnets).
 *
 * With a vnet header on the TUN, consecutive in-order TCP segments of one flow
 * are coalesced back into one GSO super-packet (virtio_net_hdr TCPV4 with
 * NEEDS_CSUM; the TCP checksum field carries the pseudo-header sum, as for
 * CHECKSUM_PARTIAL) and handed to the kernel in one writev(): headers rebuilt
 * once, payloads as iovecs straight from the receive buffers. Anything else is
 * written as it came.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "forwarder.h"

#define RX_BATCH 16
#define RX_BUF_LEN 65536
#define CO_MAX_SEGS 64
#define TCP_ACK 0x10
#define TCP_PSH 0x08

struct coalesce { /* the super-packet being built */
  int nseg;
  const uint8_t *first; /* first segment as received, written alone if nothing joins */
  size_t first_len;
  size_t hl, thl;
  uint16_t mss;
  uint32_t payload, next_seq, bytes;
  bool closed;
  uint8_t hdr[20 + 60];
  struct virtio_net_hdr vh;
  struct iovec iov[2 + CO_MAX_SEGS];
  int niov;
};

struct rx_state {
  struct forwarder *fw;
  struct counters *c;
  int slot, tun, udp;
  uint8_t *arena;
  bool vnet, gro;
  uint8_t *bufs[RX_BATCH];
  struct iovec iov[RX_BATCH];
  struct mmsghdr msgs[RX_BATCH];
  struct sockaddr_in from[RX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cm[RX_BATCH];
  struct virtio_net_hdr plain_vh; /* zero: "checksum as in the packet, no GSO" */
  struct coalesce co;
};

static void tun_write(struct rx_state *s, struct iovec *iov, int n, uint64_t pkts, uint64_t bytes) {
  cnt_add(s->c, C_TUN_WRITES, 1);
  for (;;) {
    ssize_t r = writev(s->tun, iov, n);
    if (r >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && fw_wait(s->fw, s->tun, POLLOUT, 10)) continue;
    cnt_add(s->c, C_TUN_WRITE_ERRORS, pkts);
    return;
  }
  cnt_add(s->c, C_RX_PACKETS, pkts);
  cnt_add(s->c, C_RX_BYTES, bytes);
}

static void write_one(struct rx_state *s, const uint8_t *pkt, size_t len) {
  struct iovec iov[2];
  int n = 0;
  if (s->vnet) iov[n++] = (struct iovec){&s->plain_vh, WEFT_VNET_HDR_LEN};
  iov[n++] = (struct iovec){(void *)pkt, len};
  tun_write(s, iov, n, 1, len);
}

static void co_flush(struct rx_state *s) {
  struct coalesce *co = &s->co;
  if (co->nseg == 0) return;
  if (co->nseg == 1) {
    write_one(s, co->first, co->first_len);
    co->nseg = 0;
    return;
  }
  uint8_t *ip = co->hdr, *th = co->hdr + 20;
  wr16be(ip + 2, (uint16_t)(co->hl + co->payload));
  ip[10] = ip[11] = 0;
  uint16_t ipc = ip_header_csum(ip, 20);
  memcpy(ip + 10, &ipc, 2);
  uint32_t saddr, daddr;
  memcpy(&saddr, ip + 12, 4);
  memcpy(&daddr, ip + 16, 4);
  uint16_t ps = csum_fold(csum_pseudo(saddr, daddr, IPPROTO_TCP, (uint16_t)(co->thl + co->payload)));
  memcpy(th + 16, &ps, 2);
  co->vh = (struct virtio_net_hdr){
      .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
      .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
      .hdr_len = (uint16_t)co->hl,
      .gso_size = co->mss,
      .csum_start = 20,
      .csum_offset = 16,
  };
  co->iov[0] = (struct iovec){&co->vh, WEFT_VNET_HDR_LEN};
  co->iov[1] = (struct iovec){co->hdr, co->hl};
  tun_write(s, co->iov, co->niov, (uint64_t)co->nseg, co->bytes);
  co->nseg = 0;
}

/* A plain in-order data segment: no IP options or fragments, only ACK(+PSH). */
static bool coalescable(const uint8_t *p, size_t len, size_t *thl_out) {
  if (p[0] != 0x45 || p[9] != IPPROTO_TCP || (rd16be(p + 6) & 0x3fff) != 0 || len < 40) return false;
  size_t thl = (size_t)(p[32] >> 4) * 4;
  if (thl < 20 || 20 + thl >= len) return false;
  uint8_t f = p[33];
  if ((f & ~(TCP_ACK | TCP_PSH)) != 0 || !(f & TCP_ACK)) return false;
  *thl_out = thl;
  return true;
}

static bool co_joins(const struct coalesce *co, const uint8_t *p, size_t len, size_t thl) {
  const uint8_t *h = co->hdr;
  size_t plen = len - 20 - thl;
  return co->nseg > 0 && !co->closed && co->nseg < CO_MAX_SEGS && thl == co->thl &&
         plen <= co->mss && co->hl + co->payload + plen <= 65535 &&
         p[1] == h[1] && p[8] == h[8] && (p[6] & 0x40) == (h[6] & 0x40) && /* tos, ttl, DF */
         memcmp(p + 12, h + 12, 8) == 0 &&                                 /* addresses */
         memcmp(p + 20, h + 20, 4) == 0 &&                                 /* ports */
         rd32be(p + 24) == co->next_seq &&                                 /* in order */
         memcmp(p + 28, h + 28, 4) == 0 &&                                 /* ack */
         memcmp(p + 34, h + 34, 2) == 0 &&                                 /* window */
         memcmp(p + 40, h + 40, thl - 20) == 0;                            /* options */
}

static void deliver(struct rx_state *s, const uint8_t *p, size_t len) {
  size_t thl;
  if (!s->vnet || !coalescable(p, len, &thl)) {
    co_flush(s);
    write_one(s, p, len);
    return;
  }
  struct coalesce *co = &s->co;
  size_t hl = 20 + thl, plen = len - hl;
  bool psh = p[33] & TCP_PSH;
  if (co_joins(co, p, len, thl)) {
    co->iov[co->niov++] = (struct iovec){(void *)(p + hl), plen};
    co->nseg++;
    co->payload += (uint32_t)plen;
    co->bytes += (uint32_t)len;
    co->next_seq += (uint32_t)plen;
    if (psh) co->hdr[33] |= TCP_PSH;
    if (psh || plen < co->mss) co->closed = true;
    return;
  }
  co_flush(s);
  co->nseg = 1;
  co->first = p;
  co->first_len = len;
  co->hl = hl;
  co->thl = thl;
  co->mss = (uint16_t)plen;
  co->payload = (uint32_t)plen;
  co->bytes = (uint32_t)len;
  co->next_seq = rd32be(p + 24) + (uint32_t)plen;
  co->closed = psh;
  memcpy(co->hdr, p, hl);
  co->iov[2] = (struct iovec){(void *)(p + hl), plen};
  co->niov = 3;
}

static int gro_size(struct msghdr *m) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(cm), sizeof v);
      return v;
    }
  }
  return 0;
}

/* A datagram that is not IPv4: an inner IPv6 packet, its source inside one of
 * the sender's IPv6 subnets, or malformed. Never coalesced. */
static void deliver6(struct rx_state *s, const struct peer_table *t, const struct peer_entry *sender, const uint8_t *p, size_t dl) {
  size_t pl = ipv6_valid_len(p, dl);
  if (!pl) {
    cnt_add(s->c, C_DROP_MALFORMED, 1);
    return;
  }
  if (!peer_sender_owns6(t, sender->public_ip, rd128be(p + IPV6_SRC_OFF))) {
    cnt_add(s->c, C_DROP_SPOOFED_SOURCE, 1);
    return;
  }
  co_flush(s);
  write_one(s, p, pl);
}

static void handle(struct rx_state *s, const struct peer_table *t, int i) {
  struct msghdr *m = &s->msgs[i].msg_hdr;
  size_t len = s->msgs[i].msg_len;
  const uint8_t *buf = s->bufs[i];
  int gso = s->gro ? gro_size(m) : 0;
  size_t step = gso > 0 ? (size_t)gso : len;
  if (step == 0) step = 1;
  if (m->msg_flags & MSG_TRUNC) {
    cnt_add(s->c, C_DROP_MALFORMED, (len + step - 1) / step);
    return;
  }
  const struct peer_entry *sender = peer_sender(t, ntohl(s->from[i].sin_addr.s_addr));
  for (size_t off = 0; off < len; off += step) {
    size_t dl = len - off < step ? len - off : step;
    const uint8_t *p = buf + off;
    if (!sender) {
      cnt_add(s->c, C_DROP_UNKNOWN_SENDER, 1);
      continue;
    }
    size_t pl = ipv4_valid_len(p, dl);
    if (!pl) {
      deliver6(s, t, sender, p, dl);
      continue;
    }
    if (!peer_sender_owns(t, sender, rd32be(p + 12))) {
      cnt_add(s->c, C_DROP_SPOOFED_SOURCE, 1);
      continue;
    }
    deliver(s, p, pl);
  }
}

struct rx_state *rx_open(struct forwarder *fw, int slot, int tun_fd, int udp_fd) {
  struct rx_state *s = calloc(1, sizeof *s);
  uint8_t *arena = malloc((size_t)RX_BATCH * RX_BUF_LEN);
  if (!s || !arena) {
    free(s);
    free(arena);
    return NULL;
  }
  s->fw = fw;
  s->c = &fw->cnt[slot];
  s->slot = slot;
  s->tun = tun_fd;
  s->udp = udp_fd;
  s->vnet = fw->feat.vnet_hdr;
  s->gro = fw->feat.udp_gro;
  s->arena = arena;
  for (int i = 0; i < RX_BATCH; i++) s->bufs[i] = arena + (size_t)i * RX_BUF_LEN;
  return s;
}

void rx_free(struct rx_state *s) {
  if (!s) return;
  free(s->arena);
  free(s);
}

bool rx_pass(struct rx_state *s) {
  for (int i = 0; i < RX_BATCH; i++) {
    s->iov[i] = (struct iovec){s->bufs[i], RX_BUF_LEN};
    s->msgs[i].msg_hdr = (struct msghdr){
        .msg_name = &s->from[i],
        .msg_namelen = sizeof s->from[i],
        .msg_iov = &s->iov[i],
        .msg_iovlen = 1,
        .msg_control = s->gro ? s->cm[i].buf : NULL,
        .msg_controllen = s->gro ? sizeof s->cm[i].buf : 0,
    };
    s->msgs[i].msg_len = 0;
  }
  int n;
  do n = recvmmsg(s->udp, s->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  cnt_add(s->c, C_UDP_RECVS, (uint64_t)n);
  const struct peer_table *t = fw_table_acquire(s->fw, s->slot);
  for (int i = 0; i < n; i++) handle(s, t, i);
  fw_table_release(s->fw, s->slot);
  co_flush(s); /* buffers are reused by the next recvmmsg */
  return n == RX_BATCH;
}
