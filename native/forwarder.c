/*
 * Forwarder lifecycle: open the TUN queues and the UDP socket, probe which
 * offloads the kernel accepts (falling back with a log line each), start the
 * threads, publish peer tables, sum counters, stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forwarder.h"

const char *const weft_counter_names[C_COUNT] = {
    [C_TX_PACKETS] = "txPackets",
    [C_TX_BYTES] = "txBytes",
    [C_RX_PACKETS] = "rxPackets",
    [C_RX_BYTES] = "rxBytes",
    [C_DROP_NO_ROUTE] = "noRoute",
    [C_DROP_UNKNOWN_SENDER] = "unknownSender",
    [C_DROP_SPOOFED_SOURCE] = "spoofedSource",
    [C_DROP_MALFORMED] = "malformed",
    [C_TUN_WRITE_ERRORS] = "tunWriteErrors",
    [C_SEND_ERRORS] = "sendErrors",
    [C_ICMP_UNREACHABLE_SENT] = "icmpUnreachableSent",
    [C_TUN_READS] = "tunReads",
    [C_UDP_SENDS] = "udpSends",
    [C_UDP_RECVS] = "udpRecvs",
    [C_TUN_WRITES] = "tunWrites",
};

void fw_log(struct forwarder *fw, const char *fmt, ...) {
  pthread_mutex_lock(&fw->log_lock);
  if (fw->nlog < WEFT_LOG_LINES) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fw->log[fw->nlog++], WEFT_LOG_LEN, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&fw->log_lock);
}

/* ---- peer table publication (hazard pointers) ----------------------------
 * A reader announces the table it is about to use in its hazard slot and
 * re-checks that it is still current; the writer swaps the pointer and frees
 * an old table only once no slot announces it. Readers never wait. */

const struct peer_table *fw_table_acquire(struct forwarder *fw, int slot) {
  struct peer_table *t;
  do {
    t = atomic_load(&fw->table);
    atomic_store(&fw->hazard[slot], t);
  } while (t != atomic_load(&fw->table));
  return t;
}

void fw_table_release(struct forwarder *fw, int slot) {
  atomic_store_explicit(&fw->hazard[slot], NULL, memory_order_release);
}

static bool table_in_use(struct forwarder *fw, struct peer_table *t) {
  for (int i = 0; i < WEFT_MAX_THREADS; i++)
    if (atomic_load(&fw->hazard[i]) == t) return true;
  return false;
}

static void reclaim(struct forwarder *fw, bool wait) {
  size_t w = 0;
  for (size_t i = 0; i < fw->nretired; i++) {
    struct peer_table *t = fw->retired[i];
    /* a batch holds a table for microseconds; waiting is bounded by that */
    while (wait && table_in_use(fw, t)) sched_yield();
    if (table_in_use(fw, t)) fw->retired[w++] = t;
    else peer_table_free(t);
  }
  fw->nretired = w;
}

void fw_set_peers(struct forwarder *fw, struct peer_table *t) {
  pthread_mutex_lock(&fw->retire_lock);
  struct peer_table *old = atomic_exchange(&fw->table, t);
  if (old) {
    if (fw->nretired == sizeof fw->retired / sizeof fw->retired[0]) reclaim(fw, true);
    fw->retired[fw->nretired++] = old;
  }
  reclaim(fw, false);
  pthread_mutex_unlock(&fw->retire_lock);
}

void fw_counters(struct forwarder *fw, uint64_t out[C_COUNT]) {
  memset(out, 0, sizeof(uint64_t) * C_COUNT);
  for (int t = 0; t < WEFT_MAX_THREADS; t++)
    for (int k = 0; k < C_COUNT; k++) out[k] += atomic_load_explicit(&fw->cnt[t].v[k], memory_order_relaxed);
}

bool fw_wait(struct forwarder *fw, int fd, short events, int timeout_ms) {
  struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = fw->stop_fd, .events = POLLIN}};
  for (;;) {
    if (atomic_load_explicit(&fw->stopping, memory_order_relaxed)) return false;
    int r = poll(p, 2, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (atomic_load_explicit(&fw->stopping, memory_order_relaxed) || (p[1].revents & POLLIN)) return false;
    return true;
  }
}

/* ---- open ------------------------------------------------------------------ */

static void set_buf(int fd, int force_opt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) < 0)
    (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

/* One UDP socket on the port (port 0: the first picks one, the others join
 * it). reuseport: join a SO_REUSEPORT group, one socket per worker. */
static int open_udp(struct forwarder *fw, uint16_t port, bool reuseport, char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    snprintf(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
    close(fd);
    return -1;
  }
  set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, 8 << 20);
  set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, 8 << 20);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(fw->opt.local_ip)};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    snprintf(err, errlen, "bind udp %s:%u: %s", ip, port, strerror(errno));
    close(fd);
    return -1;
  }
  socklen_t sl = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) fw->bound_port = ntohs(sa.sin_port);
  return fd;
}

/* Classic BPF run by the kernel on each datagram arriving at the reuseport
 * group, its data starting at the UDP payload, i.e. the inner IPv4 header. It
 * returns the index of the socket (bind order = worker order) from a hash of
 * the inner flow that is the same both ways: saddr ^ daddr, and for unfragmented
 * TCP/UDP also sport ^ dport. All datagrams between two hosts share one outer
 * 4-tuple (the wire is flannel's: both ports are backend.port), so the kernel's
 * own reuseport hash would put every flow from a peer on one worker. A short
 * datagram makes a load fail and the program return 0: worker 0, which drops it
 * as malformed. */
static int attach_steering(int fd, int nsocks) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),           /* A = saddr */
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                  /* X = A */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),           /* A = daddr */
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),           /* A ^= X */
      BPF_STMT(BPF_ST, 0),                              /* M0 = A */
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),            /* A = flags, fragment offset */
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 12, 0), /* a fragment: no ports */
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),            /* A = protocol */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 9),
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),           /* X = IP header length */
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),            /* A = sport */
      BPF_STMT(BPF_ST, 1),                              /* M1 = A */
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),            /* A = dport */
      BPF_STMT(BPF_LDX | BPF_MEM, 1),                   /* X = sport */
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),           /* A = sport ^ dport */
      BPF_STMT(BPF_LDX | BPF_MEM, 0),                   /* X = saddr ^ daddr */
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_ST, 0),                              /* M0 = A */
      BPF_STMT(BPF_LD | BPF_MEM, 0),                    /* (jump target) A = M0 */
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                  /* fold: A ^= A >> 16; A ^= A >> 8 */
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)nsocks),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

/* One socket per worker in fast mode; fewer (workers then share) where the
 * kernel refuses, each case with a log line. Note that a SO_REUSEPORT group
 * admits other sockets of the same user on the port: a second forwarder started
 * by mistake on the same port would share datagrams instead of failing to bind,
 * so a single-queue forwarder keeps a plain socket. */
static int open_udp_sockets(struct forwarder *fw, char *err, size_t errlen) {
  int want = fw->opt.simple ? 1 : fw->ntun;
  bool reuse = want > 1;
  int fd = open_udp(fw, fw->opt.port, reuse, err, errlen);
  if (fd < 0 && reuse) {
    fw_log(fw, "one udp socket for all queues (%s)", err);
    reuse = false;
    want = 1;
    fd = open_udp(fw, fw->opt.port, false, err, errlen);
  }
  if (fd < 0) return -1;
  fw->udp_fds[fw->nudp++] = fw->udp_fd = fd;
  for (int i = 1; i < want; i++) {
    int f = open_udp(fw, fw->bound_port, true, err, errlen);
    if (f < 0) {
      fw_log(fw, "udp socket %d (%s): queues share %d socket(s)", i, err, fw->nudp);
      break;
    }
    fw->udp_fds[fw->nudp++] = f;
  }
  if (fw->nudp > 1) {
    if (attach_steering(fw->udp_fd, fw->nudp) == 0) fw->feat.steering = true;
    else fw_log(fw, "reuseport steering refused (%s): the kernel picks a socket by outer 4-tuple, one per peer", strerror(errno));
  }
  return 0;
}

static void probe_udp_offloads(struct forwarder *fw) {
  if (fw->opt.simple) return;
  fw->feat.batching = true;
  if (fw->opt.allow_udp_gso) {
    /* setting a socket-wide segment size proves the kernel knows UDP_SEGMENT;
     * reset to 0 since sends carry their own size in a cmsg */
    int gso = 1200, zero = 0;
    if (setsockopt(fw->udp_fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso) == 0) {
      (void)setsockopt(fw->udp_fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero);
      fw->feat.udp_gso = true;
    } else {
      fw_log(fw, "udp gso unavailable (UDP_SEGMENT: %s): one sendmmsg entry per datagram", strerror(errno));
    }
  } else {
    fw_log(fw, "udp gso disabled by option");
  }
  if (fw->opt.allow_udp_gro) {
    int one = 1, ok = 0;
    for (int i = 0; i < fw->nudp; i++) ok += setsockopt(fw->udp_fds[i], SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    if (ok == fw->nudp) fw->feat.udp_gro = true;
    else fw_log(fw, "udp gro unavailable (UDP_GRO: %s): one datagram per recvmmsg entry", strerror(errno));
  } else {
    fw_log(fw, "udp gro disabled by option");
  }
}

static int open_tun(struct forwarder *fw, char *err, size_t errlen) {
  const struct weft_options *o = &fw->opt;
  int queues = o->simple ? 1 : o->queues;
  bool want_vnet = !o->simple && o->allow_vnet_hdr;
  bool mq = queues > 1;
  int fd = tun_open_queue(o->tun_name, want_vnet, mq, fw->tun_name, err, errlen);
  if (fd < 0 && mq) {
    fw_log(fw, "multi-queue TUN refused (%s): one queue", err);
    mq = false;
    queues = 1;
    fd = tun_open_queue(o->tun_name, want_vnet, false, fw->tun_name, err, errlen);
  }
  if (fd < 0 && want_vnet) {
    fw_log(fw, "IFF_VNET_HDR refused (%s): no TUN offloads", err);
    want_vnet = false;
    fd = tun_open_queue(o->tun_name, false, mq, fw->tun_name, err, errlen);
  }
  if (fd < 0) return -1;
  fw->tun_fds[fw->ntun++] = fd;
  for (int q = 1; q < queues; q++) {
    int f = tun_open_queue(fw->tun_name, want_vnet, true, NULL, err, errlen);
    if (f < 0) {
      fw_log(fw, "TUN queue %d: %s; running with %d queue(s)", q, err, fw->ntun);
      break;
    }
    fw->tun_fds[fw->ntun++] = f;
  }
  fw->feat.vnet_hdr = want_vnet;
  fw->feat.multi_queue = mq && fw->ntun > 1;
  fw->feat.queues = fw->ntun;
  if (want_vnet) {
    bool ok = true;
    for (int i = 0; i < fw->ntun; i++) {
      int rc = tun_enable_offload(fw->tun_fds[i]);
      if (rc < 0) {
        fw_log(fw, "TUNSETOFFLOAD (csum, tso4) refused: %s; packets arrive one by one", strerror(-rc));
        ok = false;
        break;
      }
    }
    fw->feat.tso = ok;
    fw->feat.csum_offload = ok;
  } else if (!o->simple) {
    fw_log(fw, "TUN offloads off: no vnet header");
  }
  fw->feat.tun_gro = fw->feat.vnet_hdr;
  return 0;
}

static int start_thread(struct forwarder *fw, void *(*body)(void *), int tun_fd, int udp_fd, char *err, size_t errlen) {
  struct thread_ctx *c = &fw->threads[fw->nthreads];
  c->fw = fw;
  c->index = fw->nthreads;
  c->tun_fd = tun_fd;
  c->udp_fd = udp_fd;
  int rc = pthread_create(&c->tid, NULL, body, c);
  if (rc != 0) {
    snprintf(err, errlen, "pthread_create: %s", strerror(rc));
    return -1;
  }
  c->started = true;
  fw->nthreads++;
  return 0;
}

int fw_open(const struct weft_options *opt, struct forwarder **out, char *err, size_t errlen) {
  struct forwarder *fw = calloc(1, sizeof *fw);
  if (!fw) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  fw->opt = *opt;
  if (fw->opt.queues < 1) fw->opt.queues = 1;
  if (fw->opt.queues > WEFT_MAX_QUEUES) fw->opt.queues = WEFT_MAX_QUEUES;
  fw->local_mask = opt->local_prefix == 0 ? 0 : 0xffffffffu << (32 - opt->local_prefix);
  if (fw->opt.gateway_ip == 0) fw->opt.gateway_ip = (opt->local_net & fw->local_mask) + 1;
  fw->udp_fd = fw->stop_fd = -1;
  pthread_mutex_init(&fw->retire_lock, NULL);
  pthread_mutex_init(&fw->log_lock, NULL);
  atomic_store(&fw->table, peer_table_build(NULL, 0, 0, 0, NULL, 0));
  if (!atomic_load(&fw->table)) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  fw->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fw->stop_fd < 0) {
    snprintf(err, errlen, "eventfd: %s", strerror(errno));
    goto fail;
  }
  if (open_tun(fw, err, errlen) < 0) goto fail;
  if (fw->opt.mtu > 0) {
    int rc = tun_set_mtu(fw->tun_name, fw->opt.mtu);
    if (rc < 0) {
      snprintf(err, errlen, "set mtu %d on %s: %s", fw->opt.mtu, fw->tun_name, strerror(-rc));
      goto fail;
    }
  }
  fw->ifindex = tun_ifindex(fw->tun_name);
  tun_allow_local_source(fw->tun_name);
  if (open_udp_sockets(fw, err, errlen) < 0) goto fail;
  probe_udp_offloads(fw);

  if (fw->opt.simple) {
    if (start_thread(fw, simple_thread, fw->tun_fds[0], fw->udp_fd, err, errlen) < 0) goto fail;
  } else {
    for (int q = 0; q < fw->ntun; q++)
      if (start_thread(fw, worker_thread, fw->tun_fds[q], fw->udp_fds[q % fw->nudp], err, errlen) < 0) goto fail;
  }
  *out = fw;
  return 0;
fail:
  fw_close(fw);
  fw_free(fw);
  return -1;
}

/* Stop threads and close every fd; the TUN device goes away with its last fd. */
void fw_close(struct forwarder *fw) {
  if (atomic_exchange(&fw->stopping, true)) return;
  if (fw->stop_fd >= 0) {
    uint64_t one = 1;
    ssize_t r = write(fw->stop_fd, &one, sizeof one);
    (void)r;
  }
  for (int i = 0; i < fw->nthreads; i++)
    if (fw->threads[i].started) pthread_join(fw->threads[i].tid, NULL);
  fw->nthreads = 0;
  for (int i = 0; i < WEFT_MAX_THREADS; i++) atomic_store(&fw->hazard[i], NULL);
  for (int i = 0; i < fw->ntun; i++) close(fw->tun_fds[i]);
  fw->ntun = 0;
  for (int i = 0; i < fw->nudp; i++) close(fw->udp_fds[i]);
  fw->nudp = 0;
  if (fw->stop_fd >= 0) close(fw->stop_fd);
  fw->udp_fd = fw->stop_fd = -1;
}

void fw_free(struct forwarder *fw) {
  if (!fw) return;
  pthread_mutex_lock(&fw->retire_lock);
  reclaim(fw, true);
  pthread_mutex_unlock(&fw->retire_lock);
  peer_table_free(atomic_load(&fw->table));
  pthread_mutex_destroy(&fw->retire_lock);
  pthread_mutex_destroy(&fw->log_lock);
  free(fw);
}
