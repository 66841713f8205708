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
static u128 prefix_mask6(unsigned len) { return len == 0 ? 0 : ~(u128)0 << (128 - len); }

static int by_subnet6_cmp(const void *a, const void *b) {
  const struct peer6_entry *x = a, *y = b;
  if (x->prefix_len != y->prefix_len) return x->prefix_len > y->prefix_len ? -1 : 1;
  if (x->net != y->net) return x->net < y->net ? -1 : 1;
  return 0;
}

static int by_sender6_cmp(const void *a, const void *b) {
  const struct peer6_entry *x = a, *y = b;
  if (x->public_ip != y->public_ip) return x->public_ip < y->public_ip ? -1 : 1;
  return by_subnet6_cmp(a, b);
}

/* The IPv6 half of the table, as for IPv4 (the caller leaves our own subnet out). */
static bool build6(struct peer_table *t, const uint32_t *sx, size_t n6) {
  t->by_subnet6 = calloc(n6 ? n6 : 1, sizeof *t->by_subnet6);
  t->by_sender6 = calloc(n6 ? n6 : 1, sizeof *t->by_sender6);
  if (!t->by_subnet6 || !t->by_sender6) return false;
  size_t k = 0;
  for (size_t i = 0; i < n6; i++) {
    const uint32_t *w = sx + 6 * i;
    if (w[4] > 128) continue;
    struct peer6_entry e = {.mask = prefix_mask6(w[4]), .prefix_len = (uint8_t)w[4], .public_ip = w[5]};
    e.net = (((u128)w[0] << 96) | ((u128)w[1] << 64) | ((u128)w[2] << 32) | w[3]) & e.mask;
    t->by_subnet6[k++] = e;
  }
  qsort(t->by_subnet6, k, sizeof *t->by_subnet6, by_subnet6_cmp);
  size_t n = 0;
  for (size_t i = 0; i < k; i++) {
    if (n && t->by_subnet6[n - 1].net == t->by_subnet6[i].net && t->by_subnet6[n - 1].prefix_len == t->by_subnet6[i].prefix_len)
      continue;
    t->by_subnet6[n++] = t->by_subnet6[i];
  }
  t->count6 = n;
  memcpy(t->by_sender6, t->by_subnet6, n * sizeof *t->by_sender6);
  qsort(t->by_sender6, n, sizeof *t->by_sender6, by_sender6_cmp);
  for (size_t i = 0; i < n; i++) {
    if (t->ngroups6 == 0 || t->groups6[t->ngroups6 - 1].len != t->by_subnet6[i].prefix_len) {
      t->groups6[t->ngroups6].len = t->by_subnet6[i].prefix_len;
      t->groups6[t->ngroups6].mask = t->by_subnet6[i].mask;
      t->groups6[t->ngroups6].start = i;
      t->ngroups6++;
    }
    t->groups6[t->ngroups6 - 1].end = i + 1;
  }
  return true;
}

/* triples: [net, prefixLen, publicIP] * n, host order. Entries for the local
 * subnet itself are skipped (the caller may hand over every lease, ours too).
 * For one subnet listed twice, the first wins. */
struct peer_table *peer_table_build(const uint32_t *triples, size_t n, uint32_t local_net, uint32_t local_mask,
                                    const uint32_t *sextuples, size_t n6) {
  struct peer_table *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->by_subnet = calloc(n ? n : 1, sizeof *t->by_subnet);
  t->by_sender = calloc(n ? n : 1, sizeof *t->by_sender);
  if (!t->by_subnet || !t->by_sender || !build6(t, sextuples, n6)) {
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
  free(t->by_subnet6);
  free(t->by_sender6);
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

const struct peer6_entry *peer_route6(const struct peer_table *t, u128 dst) {
  for (size_t g = 0; g < t->ngroups6; g++) {
    u128 key = dst & t->groups6[g].mask;
    size_t lo = t->groups6[g].start, hi = t->groups6[g].end;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      u128 v = t->by_subnet6[mid].net;
      if (v == key) return &t->by_subnet6[mid];
      if (v < key) lo = mid + 1;
      else hi = mid;
    }
  }
  return NULL;
}

bool peer_sender_owns6(const struct peer_table *t, uint32_t public_ip, u128 src) {
  size_t lo = 0, hi = t->count6;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->by_sender6[mid].public_ip < public_ip) lo = mid + 1;
    else hi = mid;
  }
  for (size_t i = lo; i < t->count6 && t->by_sender6[i].public_ip == public_ip; i++)
    if ((src & t->by_sender6[i].mask) == t->by_sender6[i].net) return true;
  return false;
}
