/*
 * Fast path, TUN -> UDP: one direction of a worker (worker.c), which owns a TUN
 * queue and a UDP socket.
 *
 * A batch is up to TX_BATCH reads from the TUN. With IFF_VNET_HDR + TSO a read
 * may be a TCP super-packet of up to 64 KB; it is cut here into MSS-sized,
 * complete IPv4/TCP packets (own IP length, id and checksum; TCP sequence,
 * flags and checksum), because the wire carries one inner packet per datagram
 * (flannel compatible). Consecutive packets of one size for one peer are then
 * sent as one UDP GSO message (UDP_SEGMENT = inner packet size; the kernel cuts
 * it into datagrams), and every message of the batch goes out in one
 * sendmmsg(). Payload bytes are never copied here: each datagram is an iovec
 * pair {rebuilt headers, slice of the read buffer}.
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

#define TX_BATCH 32
#define TX_BUF_LEN (65536 + WEFT_VNET_HDR_LEN + 512) /* gso_max_size plus headroom */
#define TX_MAX_MSGS 512
#define TX_MAX_IOV 2048
#define TX_MAX_HDRS 1024
#define HDR_SLOT 128       /* IPv4 (<= 60) + TCP (<= 60) headers */
#define GSO_MAX_SEGS 64    /* UDP_MAX_SEGMENTS in older kernels */
#define GSO_MAX_BYTES 65000 /* one UDP datagram's payload limit, with room */

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

struct tx_group { /* one sendmmsg entry: datagrams of one size for one peer */
  uint32_t dst;
  uint32_t bytes;
  uint16_t seg_len;
  uint16_t nsegs;
  bool closed; /* a shorter datagram ended it */
  int iov_start, niov;
};

struct tx_state {
  struct forwarder *fw;
  struct counters *c;
  int slot, tun, udp;
  uint8_t *arena;
  bool vnet, gso;
  uint8_t *bufs[TX_BATCH];
  size_t lens[TX_BATCH];
  uint8_t *hdrs;
  int nhdr;
  struct iovec iov[TX_MAX_IOV];
  int niov;
  struct tx_group g[TX_MAX_MSGS];
  int ng;
  struct mmsghdr msgs[TX_MAX_MSGS];
  struct sockaddr_in addrs[TX_MAX_MSGS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cm[TX_MAX_MSGS];
  uint8_t icmp[1024 + WEFT_VNET_HDR_LEN];
  struct icmp_bucket bucket;
};

static void add_datagram(struct tx_state *s, uint32_t dst, const void *a, size_t alen, const void *b, size_t blen) {
  size_t len = alen + blen;
  struct tx_group *g = s->ng ? &s->g[s->ng - 1] : NULL;
  bool join = s->gso && g && g->dst == dst && !g->closed && len <= g->seg_len && g->nsegs < GSO_MAX_SEGS &&
              g->bytes + len <= GSO_MAX_BYTES;
  if (!join) {
    g = &s->g[s->ng++];
    *g = (struct tx_group){.dst = dst, .seg_len = (uint16_t)len, .iov_start = s->niov};
  }
  s->iov[s->niov++] = (struct iovec){(void *)a, alen};
  g->niov++;
  if (blen) {
    s->iov[s->niov++] = (struct iovec){(void *)b, blen};
    g->niov++;
  }
  g->nsegs++;
  g->bytes += (uint32_t)len;
  if (len < g->seg_len) g->closed = true;
}

static bool has_room(const struct tx_state *s, int segs) {
  return s->ng + segs <= TX_MAX_MSGS && s->niov + 2 * segs <= TX_MAX_IOV && s->nhdr + segs <= TX_MAX_HDRS;
}

/* GSO refused for this message (route MTU, device without checksum offload):
 * send its datagrams one by one, the iovecs of each summing to seg_len. */
static void send_group_singly(struct tx_state *s, int gi) {
  struct tx_group *g = &s->g[gi];
  int k = g->iov_start, end = g->iov_start + g->niov;
  while (k < end) {
    int start = k;
    size_t acc = 0;
    while (k < end && acc < g->seg_len) acc += s->iov[k++].iov_len;
    struct msghdr m = {.msg_name = &s->addrs[gi], .msg_namelen = sizeof s->addrs[gi], .msg_iov = &s->iov[start],
                       .msg_iovlen = (size_t)(k - start)};
    if (sendmsg(s->udp, &m, 0) < 0) {
      cnt_add(s->c, C_SEND_ERRORS, 1);
      continue;
    }
    cnt_add(s->c, C_UDP_SENDS, 1);
    cnt_add(s->c, C_TX_PACKETS, 1);
    cnt_add(s->c, C_TX_BYTES, acc);
  }
}

static void flush(struct tx_state *s) {
  struct forwarder *fw = s->fw;
  for (int i = 0; i < s->ng; i++) {
    struct tx_group *g = &s->g[i];
    s->addrs[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(fw->opt.port), .sin_addr.s_addr = htonl(g->dst)};
    struct msghdr *m = &s->msgs[i].msg_hdr;
    *m = (struct msghdr){.msg_name = &s->addrs[i], .msg_namelen = sizeof s->addrs[i], .msg_iov = &s->iov[g->iov_start],
                         .msg_iovlen = (size_t)g->niov};
    if (g->nsegs > 1) {
      m->msg_control = s->cm[i].buf;
      m->msg_controllen = sizeof s->cm[i].buf;
      struct cmsghdr *cm = CMSG_FIRSTHDR(m);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      memcpy(CMSG_DATA(cm), &g->seg_len, sizeof(uint16_t));
    }
  }
  int i = 0;
  while (i < s->ng) {
    int r = sendmmsg(s->udp, s->msgs + i, (unsigned)(s->ng - i), 0);
    if (r > 0) {
      for (int k = i; k < i + r; k++) {
        cnt_add(s->c, C_UDP_SENDS, 1);
        cnt_add(s->c, C_TX_PACKETS, s->g[k].nsegs);
        cnt_add(s->c, C_TX_BYTES, s->g[k].bytes);
      }
      i += r;
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == ENOBUFS) {
      if (!fw_wait(fw, s->udp, POLLOUT, 10)) break;
      continue;
    }
    if (s->g[i].nsegs > 1 && (e == EIO || e == EINVAL || e == EMSGSIZE)) {
      if (e == EIO && !atomic_exchange(&fw->gso_broken, true))
        fw_log(fw, "udp gso send failed (%s): the underlay cannot offload it; sending datagrams singly", strerror(e));
      send_group_singly(s, i);
      i++;
      continue;
    }
    cnt_add(s->c, C_SEND_ERRORS, s->g[i].nsegs);
    i++;
  }
  s->ng = s->niov = s->nhdr = 0;
  if (atomic_load_explicit(&fw->gso_broken, memory_order_relaxed)) s->gso = false;
}

static void finish_checksum(uint8_t *pkt, size_t n, const struct virtio_net_hdr *h) {
  size_t start = h->csum_start, off = h->csum_offset;
  if (start + off + 2 > n) return;
  uint16_t c = (uint16_t)~csum_fold(csum_partial(pkt + start, n - start, 0));
  if (c == 0) c = 0xffff; /* UDP: 0 means "no checksum"; TCP accepts either zero */
  memcpy(pkt + start + off, &c, 2);
}

/* Cut a TSO super-packet into complete packets of at most gso_size payload. */
static bool segment_tcp4(struct tx_state *s, uint32_t dst, uint8_t *pkt, size_t n, size_t mss) {
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || pkt[9] != IPPROTO_TCP || ihl + 20 > n) return false;
  uint8_t *tcp = pkt + ihl;
  size_t thl = (size_t)(tcp[12] >> 4) * 4;
  size_t hl = ihl + thl;
  if (thl < 20 || hl > n || hl > HDR_SLOT || mss == 0) return false;
  size_t payload = n - hl;
  size_t nseg = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (!has_room(s, (int)nseg)) flush(s);
  if (!has_room(s, (int)nseg)) return false;
  uint32_t saddr, daddr;
  memcpy(&saddr, pkt + 12, 4);
  memcpy(&daddr, pkt + 16, 4);
  uint32_t seq0 = rd32be(tcp + 4);
  uint16_t id0 = rd16be(pkt + 4);
  uint8_t flags = tcp[13];
  for (size_t i = 0; i < nseg; i++) {
    size_t off = hl + i * mss;
    size_t plen = n - off < mss ? n - off : mss;
    uint8_t *h = s->hdrs + (size_t)s->nhdr++ * HDR_SLOT;
    memcpy(h, pkt, hl);
    wr16be(h + 2, (uint16_t)(hl + plen));
    wr16be(h + 4, (uint16_t)(id0 + i));
    h[10] = h[11] = 0;
    uint16_t ipc = ip_header_csum(h, ihl);
    memcpy(h + 10, &ipc, 2);
    uint8_t *th = h + ihl;
    wr32be(th + 4, seq0 + (uint32_t)(i * mss));
    uint8_t f = flags;
    if (i + 1 < nseg) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= (uint8_t)~TCP_CWR;
    th[13] = f;
    th[16] = th[17] = 0;
    uint64_t sum = csum_pseudo(saddr, daddr, IPPROTO_TCP, (uint16_t)(thl + plen));
    sum = csum_partial(th, thl, sum);
    sum = csum_partial(pkt + off, plen, sum);
    uint16_t c = (uint16_t)~csum_fold(sum);
    memcpy(th + 16, &c, 2);
    add_datagram(s, dst, h, hl, pkt + off, plen);
  }
  return true;
}

static void no_route(struct tx_state *s, const uint8_t *pkt, size_t n) {
  cnt_add(s->c, C_DROP_NO_ROUTE, 1);
  if (!icmp_allowed(&s->bucket, s->fw->opt.icmp_rate)) return;
  size_t pre = s->vnet ? WEFT_VNET_HDR_LEN : 0;
  memset(s->icmp, 0, pre);
  size_t il = icmp_net_unreachable(pkt, n, s->fw->opt.gateway_ip, s->icmp + pre, sizeof s->icmp - pre);
  if (!il) return;
  if (write(s->tun, s->icmp, pre + il) == (ssize_t)(pre + il)) cnt_add(s->c, C_ICMP_UNREACHABLE_SENT, 1);
  else cnt_add(s->c, C_TUN_WRITE_ERRORS, 1);
}

/* An inner IPv6 packet: routed by the peers' IPv6 subnets. The TUN was offered
 * TSO4 only, so it never hands over an IPv6 super-packet; a checksum left to us
 * is finished as for IPv4. No ICMPv6 error for a packet without a route (the
 * kernel's own multicast chatter on the TUN lands there too): counted only. */
static void process6(struct tx_state *s, const struct peer_table *t, uint8_t *pkt, size_t n, const struct virtio_net_hdr *h) {
  if (n < IPV6_HDR_LEN || (pkt[0] >> 4) != 6) {
    cnt_add(s->c, C_DROP_MALFORMED, 1);
    return;
  }
  const struct peer6_entry *p = peer_route6(t, rd128be(pkt + IPV6_DST_OFF));
  if (!p) {
    cnt_add(s->c, C_DROP_NO_ROUTE, 1);
    return;
  }
  if ((h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE) {
    cnt_add(s->c, C_DROP_MALFORMED, 1);
    return;
  }
  if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) finish_checksum(pkt, n, h);
  if (!has_room(s, 1)) flush(s);
  add_datagram(s, p->public_ip, pkt, n, NULL, 0);
}

static void process(struct tx_state *s, const struct peer_table *t, uint8_t *buf, size_t len) {
  struct virtio_net_hdr h = {0};
  uint8_t *pkt = buf;
  size_t n = len;
  if (s->vnet) {
    if (len < WEFT_VNET_HDR_LEN) {
      cnt_add(s->c, C_DROP_MALFORMED, 1);
      return;
    }
    memcpy(&h, buf, sizeof h);
    pkt += WEFT_VNET_HDR_LEN;
    n -= WEFT_VNET_HDR_LEN;
  }
  if (n < 20 || (pkt[0] >> 4) != 4) {
    process6(s, t, pkt, n, &h);
    return;
  }
  const struct peer_entry *p = peer_route(t, rd32be(pkt + 16));
  if (!p) {
    no_route(s, pkt, n);
    return;
  }
  uint8_t gso_type = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
  if (gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && h.gso_size) {
    if (!segment_tcp4(s, p->public_ip, pkt, n, h.gso_size)) cnt_add(s->c, C_DROP_MALFORMED, 1);
    return;
  }
  if (gso_type != VIRTIO_NET_HDR_GSO_NONE) {
    cnt_add(s->c, C_DROP_MALFORMED, 1); /* a GSO kind we did not ask the TUN for */
    return;
  }
  if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) finish_checksum(pkt, n, &h);
  if (!has_room(s, 1)) flush(s);
  add_datagram(s, p->public_ip, pkt, n, NULL, 0);
}

struct tx_state *tx_open(struct forwarder *fw, int slot, int tun_fd, int udp_fd) {
  struct tx_state *s = calloc(1, sizeof *s);
  uint8_t *arena = malloc((size_t)TX_BATCH * TX_BUF_LEN);
  uint8_t *hdrs = malloc((size_t)TX_MAX_HDRS * HDR_SLOT);
  if (!s || !arena || !hdrs) {
    free(s);
    free(arena);
    free(hdrs);
    return NULL;
  }
  s->fw = fw;
  s->c = &fw->cnt[slot];
  s->slot = slot;
  s->tun = tun_fd;
  s->udp = udp_fd;
  s->vnet = fw->feat.vnet_hdr;
  s->gso = fw->feat.udp_gso;
  s->hdrs = hdrs;
  s->arena = arena;
  for (int i = 0; i < TX_BATCH; i++) s->bufs[i] = arena + (size_t)i * TX_BUF_LEN;
  return s;
}

void tx_free(struct tx_state *s) {
  if (!s) return;
  free(s->arena);
  free(s->hdrs);
  free(s);
}

bool tx_pass(struct tx_state *s) {
  struct forwarder *fw = s->fw;
  int nread = 0;
  while (nread < TX_BATCH) {
    ssize_t r = read(s->tun, s->bufs[nread], TX_BUF_LEN);
    if (r < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: drained */
    }
    if (r == 0) break;
    s->lens[nread++] = (size_t)r;
  }
  if (nread == 0) return false;
  cnt_add(s->c, C_TUN_READS, (uint64_t)nread);
  const struct peer_table *t = fw_table_acquire(fw, s->slot);
  for (int i = 0; i < nread; i++) process(s, t, s->bufs[i], s->lens[i]);
  fw_table_release(fw, s->slot);
  flush(s);
  return nread == TX_BATCH;
}
