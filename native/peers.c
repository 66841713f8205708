/*
 * The peer table: subnet -> peer public IP, and the reverse index used to
 * validate senders. Built off the hot path (on the JS thread), published by a
 * pointer swap in forwarder.c, never modified after publication.
 */
#include <stdlib.h>
#include <string.h>

#include "forwarder.h"

static int by_subnet_cmp(const void *a, const void *b) {
  const struct peer_entry *x = a, *y = b;
  if (x->prefix_len != y->prefix_len) return x->prefix_len > y->prefix_len ? -1 : 1;
  if (x->net != y->net) return x->net < y->net ? -1 : 1;
  return 0;
}

static int by_sender_cmp(const void *a, const void *b) {
  const struct peer_entry *x = a, *y = b;
  if (x->public_ip != y->public_ip) return x->public_ip < y->public_ip ? -1 : 1;
  return by_subnet_cmp(a, b);
}

static uint32_t prefix_mask(unsigned len) { return len == 0 ? 0 : 0xffffffffu << (32 - len); }

/* triples: [net, prefixLen, publicIP] * n, host order. Entries for the local
 * subnet itself are skipped (the caller may hand over every lease, ours too).
 * For one subnet listed twice, the first wins. */
struct peer_table *peer_table_build(const uint32_t *triples, size_t n, uint32_t local_net, uint32_t local_mask) {
  struct peer_table *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->by_subnet = calloc(n ? n : 1, sizeof *t->by_subnet);
  t->by_sender = calloc(n ? n : 1, sizeof *t->by_sender);
  if (!t->by_subnet || !t->by_sender) {
    peer_table_free(t);
    return NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t len = triples[3 * i + 1];
    if (len > 32) continue;
    struct peer_entry e = {.mask = prefix_mask(len), .prefix_len = (uint8_t)len, .public_ip = triples[3 * i + 2]};
    e.net = triples[3 * i] & e.mask;
    if (e.net == local_net && e.mask == local_mask) continue;
    t->by_subnet[k++] = e;
  }
  qsort(t->by_subnet, k, sizeof *t->by_subnet, by_subnet_cmp);
  /* drop duplicate subnets, keeping the first of each after a stable-enough sort */
  size_t w = 0;
  for (size_t i = 0; i < k; i++) {
    if (w && t->by_subnet[w - 1].net == t->by_subnet[i].net && t->by_subnet[w - 1].prefix_len == t->by_subnet[i].prefix_len)
      continue;
    t->by_subnet[w++] = t->by_subnet[i];
  }
  t->count = w;
  memcpy(t->by_sender, t->by_subnet, w * sizeof *t->by_sender);
  qsort(t->by_sender, w, sizeof *t->by_sender, by_sender_cmp);
  for (size_t i = 0; i < w; i++) {
    if (t->ngroups == 0 || t->groups[t->ngroups - 1].len != t->by_subnet[i].prefix_len) {
      t->groups[t->ngroups].len = t->by_subnet[i].prefix_len;
      t->groups[t->ngroups].mask = t->by_subnet[i].mask;
      t->groups[t->ngroups].start = i;
      t->ngroups++;
    }
    t->groups[t->ngroups - 1].end = i + 1;
  }
  return t;
}

void peer_table_free(struct peer_table *t) {
  if (!t) return;
  free(t->by_subnet);
  free(t->by_sender);
  free(t);
}

const struct peer_entry *peer_route(const struct peer_table *t, uint32_t dst) {
  for (size_t g = 0; g < t->ngroups; g++) {
    uint32_t key = dst & t->groups[g].mask;
    size_t lo = t->groups[g].start, hi = t->groups[g].end;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      uint32_t v = t->by_subnet[mid].net;
      if (v == key) return &t->by_subnet[mid];
      if (v < key) lo = mid + 1;
      else hi = mid;
    }
  }
  return NULL;
}

const struct peer_entry *peer_sender(const struct peer_table *t, uint32_t sender) {
  size_t lo = 0, hi = t->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->by_sender[mid].public_ip < sender) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->count && t->by_sender[lo].public_ip == sender ? &t->by_sender[lo] : NULL;
}

bool peer_sender_owns(const struct peer_table *t, const struct peer_entry *first, uint32_t src) {
  const struct peer_entry *end = t->by_sender + t->count;
  for (const struct peer_entry *e = first; e < end && e->public_ip == first->public_ip; e++)
    if ((src & e->mask) == e->net) return true;
  return false;
}
