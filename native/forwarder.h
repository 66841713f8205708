/*
 * weft udp backend: native forwarder shared declarations.
 *
 * The forwarder moves packets between a TUN device and a UDP socket in its own
 * threads (DESIGN.md §6, flannel-udp wire: one bare inner IPv4 packet per UDP
 * datagram). JavaScript only swaps the peer table, reads counters and closes.
 *
 * Threads:
 *   - simple mode: one thread, poll + one packet per read/sendto (flannel style)
 *   - fast mode:   one worker thread per TUN queue, each with its own UDP socket
 *                  (one SO_REUSEPORT group on the port, datagrams steered to a
 *                  worker by inner flow), forwarding both directions batched,
 *                  with offloads where the kernel has them (worker.c)
 *
 * Byte order: every IPv4 address and subnet held in native structs is in host
 * order unless the name ends in _be; IPv6 ones are 128-bit integers (u128),
 * the address's first byte in the top bits.
 *
 * Dual-stack: inner IPv6 packets ride the same IPv4 wire (one bare packet per
 * datagram), routed by the peers' IPv6 subnets. They take a branch of their
 * own where the IPv4 path finds "not version 4", so IPv4 pays nothing for it.
 */
#ifndef WEFT_FORWARDER_H
#define WEFT_FORWARDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checksum helpers assume a little-endian host"
#endif

#define WEFT_MAX_QUEUES 8
#define WEFT_MAX_THREADS WEFT_MAX_QUEUES
#define WEFT_LOG_LINES 16
#define WEFT_LOG_LEN 160
#define WEFT_VNET_HDR_LEN 10 /* struct virtio_net_hdr */

/* ---- peer table (peers.c) ------------------------------------------------ */

struct peer_entry {
  uint32_t net;       /* subnet address, host order, masked */
  uint32_t mask;      /* host order */
  uint32_t public_ip; /* host order */
  uint8_t prefix_len;
};

typedef unsigned __int128 u128;

struct peer6_entry {
  u128 net;           /* masked */
  u128 mask;
  uint32_t public_ip; /* host order: the peer's (IPv4) underlay address */
  uint8_t prefix_len;
};

/* Immutable once published; replaced whole by peers_publish(). */
struct peer_table {
  size_t count;
  /* by destination: sorted by prefix_len descending, then net ascending */
  struct peer_entry *by_subnet;
  /* by sender: sorted by public_ip ascending */
  struct peer_entry *by_sender;
  /* distinct prefix lengths present, longest first, with [start, end) ranges */
  size_t ngroups;
  struct { uint8_t len; uint32_t mask; size_t start, end; } groups[33];
  /* the peers' IPv6 subnets, indexed as above */
  size_t count6;
  struct peer6_entry *by_subnet6;
  struct peer6_entry *by_sender6;
  size_t ngroups6;
  struct { uint8_t len; u128 mask; size_t start, end; } groups6[129];
};

/* triples: [net, prefixLen, publicIP] * n; sextuples: [addr word 0..3 (big-endian order), prefixLen, publicIP] * n6 */
struct peer_table *peer_table_build(const uint32_t *triples, size_t n, uint32_t local_net, uint32_t local_mask,
                                    const uint32_t *sextuples, size_t n6);
void peer_table_free(struct peer_table *t);
/* peer whose subnet holds dst (longest prefix), or NULL */
const struct peer_entry *peer_route(const struct peer_table *t, uint32_t dst);
/* first entry whose public_ip == sender, or NULL; further ones follow in by_sender */
const struct peer_entry *peer_sender(const struct peer_table *t, uint32_t sender);
/* does sender hold a subnet that contains src? `first` is peer_sender()'s result */
bool peer_sender_owns(const struct peer_table *t, const struct peer_entry *first, uint32_t src);
/* IPv6: the peer whose ipv6Subnet holds dst (longest prefix), or NULL */
const struct peer6_entry *peer_route6(const struct peer_table *t, u128 dst);
/* does the peer at public_ip hold an IPv6 subnet that contains src? */
bool peer_sender_owns6(const struct peer_table *t, uint32_t public_ip, u128 src);

/* ---- counters ---------------------------------------------------------------- */

/* One block per thread, written only by its thread, summed on read. */
enum weft_counter {
  C_TX_PACKETS,
  C_TX_BYTES,
  C_RX_PACKETS,
  C_RX_BYTES,
  C_DROP_NO_ROUTE,
  C_DROP_UNKNOWN_SENDER,
  C_DROP_SPOOFED_SOURCE,
  C_DROP_MALFORMED,
  C_TUN_WRITE_ERRORS,
  C_SEND_ERRORS,
  C_ICMP_UNREACHABLE_SENT,
  C_TUN_READS,      /* read() calls that returned a packet */
  C_UDP_SENDS,      /* datagram super-packets handed to the kernel (GSO or single) */
  C_UDP_RECVS,      /* datagram (possibly GRO-coalesced) buffers received */
  C_TUN_WRITES,     /* write()/writev() calls to the TUN */
  C_COUNT
};
extern const char *const weft_counter_names[C_COUNT];

struct counters {
  _Alignas(64) _Atomic uint64_t v[C_COUNT];
};

static inline void cnt_add(struct counters *c, enum weft_counter k, uint64_t n) {
  /* single writer per block: a relaxed load+store is enough and cheap */
  atomic_store_explicit(&c->v[k], atomic_load_explicit(&c->v[k], memory_order_relaxed) + n, memory_order_relaxed);
}

/* ---- forwarder -------------------------------------------------------------- */

struct weft_options {
  char tun_name[16];
  uint16_t port;
  uint32_t local_ip;      /* 0 = any */
  uint32_t local_net;     /* local subnet (host order) */
  uint8_t local_prefix;
  uint32_t gateway_ip;    /* ICMP source; 0 = first address of local subnet */
  int mtu;                /* 0 = leave the device's MTU alone */
  bool simple;            /* flannel-style single packet path */
  int queues;             /* TUN queues / worker threads in fast mode, 1..WEFT_MAX_QUEUES */
  bool allow_vnet_hdr;    /* try IFF_VNET_HDR + TSO */
  bool allow_udp_gso;
  bool allow_udp_gro;
  int icmp_rate;          /* ICMP unreachables per second per thread; 0 = none */
};

struct weft_features {
  bool vnet_hdr;     /* IFF_VNET_HDR active */
  bool tso;          /* TUNSETOFFLOAD with TSO4 accepted: reads return super-packets */
  bool csum_offload; /* TUN_F_CSUM: reads may carry NEEDS_CSUM */
  bool udp_gso;      /* UDP_SEGMENT sends */
  bool udp_gro;      /* UDP_GRO receives */
  bool multi_queue;  /* IFF_MULTI_QUEUE */
  bool batching;     /* recvmmsg/sendmmsg batches */
  bool tun_gro;      /* RX coalesces TCP into GSO writes to the TUN */
  bool steering;     /* several sockets: datagrams steered to workers by inner flow (reuseport cBPF) */
  int queues;
};

struct forwarder;

struct thread_ctx {
  struct forwarder *fw;
  int index;     /* hazard slot and counter block */
  int tun_fd;    /* the worker's TUN queue */
  int udp_fd;    /* the worker's UDP socket */
  pthread_t tid;
  bool started;
};

struct forwarder {
  struct weft_options opt;
  struct weft_features feat;
  char tun_name[16]; /* as the kernel named it */
  int ifindex;
  uint16_t bound_port;
  int tun_fds[WEFT_MAX_QUEUES];
  int ntun;
  int udp_fd;                    /* = udp_fds[0]: probes, the simple path */
  int udp_fds[WEFT_MAX_QUEUES]; /* one per worker, bound in worker order */
  int nudp;
  int stop_fd; /* eventfd: readable once close() begins */
  atomic_bool stopping;
  uint32_t local_mask;

  /* peer table, RCU-ish: readers publish a hazard pointer while they use it */
  _Atomic(struct peer_table *) table;
  _Atomic(struct peer_table *) hazard[WEFT_MAX_THREADS];
  pthread_mutex_t retire_lock; /* JS thread only, but keep close() honest */
  struct peer_table *retired[64];
  size_t nretired;

  struct counters cnt[WEFT_MAX_THREADS];
  struct thread_ctx threads[WEFT_MAX_THREADS];
  int nthreads;

  /* atomic flag flipped if UDP GSO turns out not to work on the route */
  atomic_bool gso_broken;

  pthread_mutex_t log_lock;
  char log[WEFT_LOG_LINES][WEFT_LOG_LEN];
  int nlog;
};

/* forwarder.c */
int fw_open(const struct weft_options *opt, struct forwarder **out, char *err, size_t errlen);
void fw_set_peers(struct forwarder *fw, struct peer_table *t);
void fw_counters(struct forwarder *fw, uint64_t out[C_COUNT]);
void fw_close(struct forwarder *fw);
void fw_free(struct forwarder *fw);
void fw_log(struct forwarder *fw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const struct peer_table *fw_table_acquire(struct forwarder *fw, int slot);
void fw_table_release(struct forwarder *fw, int slot);
/* wait until fd is ready (events) or the forwarder stops; false when stopping */
bool fw_wait(struct forwarder *fw, int fd, short events, int timeout_ms);

/* tun.c */
int tun_open_queue(const char *name, bool vnet, bool multi_queue, char *actual, char *err, size_t errlen);
int tun_enable_offload(int fd);
int tun_set_mtu(const char *name, int mtu);
int tun_ifindex(const char *name);
void tun_allow_local_source(const char *name);

/* checksum.c */
uint64_t csum_partial(const void *buf, size_t len, uint64_t sum);
uint16_t csum_fold(uint64_t sum);
uint64_t csum_pseudo(uint32_t saddr_be, uint32_t daddr_be, uint8_t proto, uint16_t len);
uint16_t ip_header_csum(const uint8_t *iph, size_t ihl);

/* tx.c / rx.c: one direction each of a fast path worker; a pass forwards at
 * most one batch without blocking: true when it stopped at the batch limit
 * (more may be waiting), false when it drained its fd */
struct tx_state;
struct rx_state;
struct tx_state *tx_open(struct forwarder *fw, int slot, int tun_fd, int udp_fd);
bool tx_pass(struct tx_state *s);
void tx_free(struct tx_state *s);
struct rx_state *rx_open(struct forwarder *fw, int slot, int tun_fd, int udp_fd);
bool rx_pass(struct rx_state *s);
void rx_free(struct rx_state *s);

/* worker.c / simple.c: thread bodies */
void *worker_thread(void *arg);
void *simple_thread(void *arg);

/* icmp.c: net-unreachable reply for a packet that has no route; returns length written into out, 0 = none */
struct icmp_bucket {
  double tokens;
  long last_ns;
};
/* token bucket per thread: at most `rate` ICMP errors per second */
bool icmp_allowed(struct icmp_bucket *b, int rate);
size_t icmp_net_unreachable(const uint8_t *pkt, size_t len, uint32_t gateway_ip, uint8_t *out, size_t outlen);

/* validate an inner IPv4 packet from the wire; returns its length per tot_len, 0 when malformed */
static inline size_t ipv4_valid_len(const uint8_t *p, size_t len) {
  if (len < 20 || (p[0] >> 4) != 4) return 0;
  size_t ihl = (size_t)(p[0] & 0x0f) * 4;
  size_t tot = ((size_t)p[2] << 8) | p[3];
  if (ihl < 20 || tot < ihl || tot > len) return 0;
  return tot;
}

static inline uint32_t rd32be(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline u128 rd128be(const uint8_t *p) {
  return ((u128)rd32be(p) << 96) | ((u128)rd32be(p + 4) << 64) | ((u128)rd32be(p + 8) << 32) | rd32be(p + 12);
}

#define IPV6_HDR_LEN 40
#define IPV6_SRC_OFF 8
#define IPV6_DST_OFF 24

/* validate an inner IPv6 packet from the wire; returns its length per payload length, 0 when malformed */
static inline size_t ipv6_valid_len(const uint8_t *p, size_t len) {
  if (len < IPV6_HDR_LEN || (p[0] >> 4) != 6) return 0;
  size_t tot = IPV6_HDR_LEN + (((size_t)p[4] << 8) | p[5]);
  return tot > len ? 0 : tot;
}
static inline uint16_t rd16be(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void wr16be(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
