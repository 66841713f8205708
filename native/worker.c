/*
 * Fast path worker: one thread per TUN queue, forwarding both directions of
 * that queue: TUN -> UDP (tx.c) and UDP -> TUN (rx.c), each on its own socket of
 * the worker's (a SO_REUSEPORT group on backend.port when there are several).
 *
 * Why both directions in one thread: a packet written to the TUN is processed
 * by the kernel inside that write, so a reply it provokes (ping, TCP ACK, a
 * request/response) is already queued on the TUN when the write returns. With
 * the kernel's TUN flow steering the reply lands on the queue the request was
 * written to, so the same thread reads it on its next pass instead of waking a
 * second, sleeping thread. Waking a thread is what a lone packet pays most for
 * (tens of microseconds on a VM), and a TX thread plus an RX thread per host
 * paid it twice per round trip.
 *
 * The loop forwards a batch of each direction in turn. Once both have drained
 * their fd it asks poll(), which returns at once if something arrived (the
 * reply queued by our own TUN write) and sleeps otherwise: one syscall where
 * another pass would spend two on EAGAIN.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "forwarder.h"

void *worker_thread(void *arg) {
  struct thread_ctx *ctx = arg;
  struct forwarder *fw = ctx->fw;
  struct tx_state *tx = tx_open(fw, ctx->index, ctx->tun_fd, ctx->udp_fd);
  struct rx_state *rx = rx_open(fw, ctx->index, ctx->tun_fd, ctx->udp_fd);
  if (!tx || !rx) {
    fw_log(fw, "worker %d: out of memory, not forwarding", ctx->index);
    tx_free(tx);
    rx_free(rx);
    return NULL;
  }
  struct pollfd p[3] = {
      {.fd = ctx->tun_fd, .events = POLLIN},
      {.fd = ctx->udp_fd, .events = POLLIN},
      {.fd = fw->stop_fd, .events = POLLIN},
  };
  while (!atomic_load_explicit(&fw->stopping, memory_order_relaxed)) {
    bool more = tx_pass(tx);
    more |= rx_pass(rx);
    if (more) continue;
    int r = poll(p, 3, -1);
    if (r < 0 && errno != EINTR) break;
    if (p[2].revents) break;
  }
  tx_free(tx);
  rx_free(rx);
  return NULL;
}
